"""The media pipeline's knobs, read once from the Scrapy settings (defaults live in
``crawler/settings.py`` only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


class MediaSettingsError(ValueError):
    """A media knob has a value that cannot work; ``setting`` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting} {message}")
        self.setting = setting


def _positive(settings: Any, name: str, *, minimum: int = 1) -> int:
    try:
        value = settings.getint(name)
    except (TypeError, ValueError):
        raise MediaSettingsError(name, "must be a whole number") from None
    if value < minimum:
        raise MediaSettingsError(name, f"must be at least {minimum}, not {value}")
    return value


@dataclass(frozen=True)
class MediaSettings:
    """``MEDIA_MAX_BYTES``, ``MEDIA_MAX_VIDEO_BYTES``, ``MEDIA_DOWNLOAD_TIMEOUT``,
    ``MEDIA_MODEL_LONG_SIDE``, ``MEDIA_MAX_PIXELS``, ``MEDIA_MAX_REDIRECTS``,
    ``MEDIA_DECODE_CONCURRENCY`` (0: min(4, CPU count)), ``MEDIA_MAX_IMAGES_PER_NOTE``
    (pictures fetched per note; the rest are ``skipped``: ``image_cap``),
    ``XHS_DOWNLOAD_VIDEOS``, and the ``Referer`` sent to the CDN (``XHS_BASE_URL``)."""

    max_bytes: int
    max_video_bytes: int
    timeout: float
    model_long_side: int
    max_pixels: int
    max_redirects: int
    download_videos: bool
    # Images decoded at once (threads): bounds CPU and memory, whatever CONCURRENT_ITEMS.
    decode_concurrency: int
    referer: str
    # Real notes carry at most 18 pictures: a note listing thousands is hostile.
    max_images_per_note: int

    @classmethod
    def from_settings(cls, settings: Any) -> MediaSettings:
        base = str(settings.get("XHS_BASE_URL") or "").rstrip("/")
        try:
            timeout = settings.getfloat("MEDIA_DOWNLOAD_TIMEOUT")
        except (TypeError, ValueError):
            raise MediaSettingsError("MEDIA_DOWNLOAD_TIMEOUT", "must be a number") from None
        if timeout <= 0:
            raise MediaSettingsError("MEDIA_DOWNLOAD_TIMEOUT", f"must be positive, not {timeout}")
        decode = _positive(settings, "MEDIA_DECODE_CONCURRENCY", minimum=0)
        return cls(
            max_bytes=_positive(settings, "MEDIA_MAX_BYTES"),
            max_video_bytes=_positive(settings, "MEDIA_MAX_VIDEO_BYTES"),
            timeout=timeout,
            model_long_side=_positive(settings, "MEDIA_MODEL_LONG_SIDE"),
            max_pixels=_positive(settings, "MEDIA_MAX_PIXELS"),
            max_redirects=_positive(settings, "MEDIA_MAX_REDIRECTS", minimum=0),
            download_videos=settings.getbool("XHS_DOWNLOAD_VIDEOS"),
            decode_concurrency=decode or max(1, min(4, os.cpu_count() or 1)),
            referer=f"{base}/" if base else "",
            max_images_per_note=_positive(settings, "MEDIA_MAX_IMAGES_PER_NOTE"),
        )
