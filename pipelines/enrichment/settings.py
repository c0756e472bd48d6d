"""The enrichment knobs, read once from the Scrapy settings and checked.

Defaults live in ``crawler/settings.py`` only; this module reads them with
``settings.getint(NAME)`` and friends and validates them, raising
:class:`EnrichSettingsError` (a ``ValueError`` naming the knob) for a bad one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")


class EnrichBackend(StrEnum):
    """``ENRICH_BACKEND`` after ``auto`` is resolved."""

    GEMINI = "gemini"
    LOCAL = "local"
    OFF = "off"


class EnrichSettingsError(ValueError):
    """An enrichment knob has a value that cannot work; ``setting`` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting} {message}")
        self.setting = setting


def gemini_configured(settings: Any) -> bool:
    return bool(settings.get("GEMINI_API_KEYS") or settings.get("GEMINI_API_KEY"))


def resolve_backend(value: str | None, *, gemini_configured: bool) -> EnrichBackend:
    """``auto`` (or empty) means Gemini when a key is configured, else the local backend."""
    choice = (value or "auto").strip().lower()
    if choice == "auto":
        return EnrichBackend.GEMINI if gemini_configured else EnrichBackend.LOCAL
    try:
        return EnrichBackend(choice)
    except ValueError:
        raise EnrichSettingsError(
            "ENRICH_BACKEND", f"must be auto|gemini|local|off, not {value!r}"
        ) from None


def backend_of(settings: Any) -> EnrichBackend:
    """The run's backend from ``ENRICH_BACKEND`` and whether a Gemini key is set."""
    return resolve_backend(
        settings.get("ENRICH_BACKEND"), gemini_configured=gemini_configured(settings)
    )


def _read(getter: Callable[[str], T], name: str, *, minimum: float) -> T:
    try:
        value = getter(name)
    except (TypeError, ValueError):
        raise EnrichSettingsError(name, "must be a number") from None
    if value < minimum:  # type: ignore[operator]
        raise EnrichSettingsError(name, f"must be at least {minimum:g}, not {value}")
    return value


def _flag(settings: Any, name: str) -> bool:
    try:
        return settings.getbool(name)
    except ValueError:
        raise EnrichSettingsError(name, "must be true or false") from None


@dataclass(frozen=True)
class EnrichSettings:
    """``ENRICH_BACKEND`` (auto|gemini|local|off), ``ENRICH_CONCURRENCY`` (notes enriched
    at once: coroutine pipelines are not bounded by ``CONCURRENT_ITEMS``),
    ``ENRICH_MAX_IMAGES_PER_REQUEST``, ``ENRICH_MAX_REQUESTS_PER_NOTE`` (the request
    budget of one note per attempt), ``ENRICH_MAX_TEXT_CHARS`` (characters of a note's
    text sent to the model), ``ENRICH_PROMPT`` (template file; empty = the
    default Chinese prompt), ``ENRICH_THINKING``, ``ENRICH_RETRY_AFTER`` (seconds before a
    retryable failure is due again) and ``ENRICH_MAX_ATTEMPTS`` (then it stays failed)."""

    backend: EnrichBackend
    concurrency: int
    max_images_per_request: int
    max_requests_per_note: int
    max_text_chars: int
    prompt_path: str
    thinking: bool
    retry_after: timedelta
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: Any) -> EnrichSettings:
        return cls(
            backend=backend_of(settings),
            concurrency=_read(settings.getint, "ENRICH_CONCURRENCY", minimum=1),
            max_images_per_request=_read(
                settings.getint, "ENRICH_MAX_IMAGES_PER_REQUEST", minimum=1
            ),
            max_requests_per_note=_read(settings.getint, "ENRICH_MAX_REQUESTS_PER_NOTE", minimum=1),
            max_text_chars=_read(settings.getint, "ENRICH_MAX_TEXT_CHARS", minimum=100),
            prompt_path=settings.get("ENRICH_PROMPT") or "",
            thinking=_flag(settings, "ENRICH_THINKING"),
            retry_after=timedelta(
                seconds=_read(settings.getfloat, "ENRICH_RETRY_AFTER", minimum=0)
            ),
            max_attempts=_read(settings.getint, "ENRICH_MAX_ATTEMPTS", minimum=1),
        )
