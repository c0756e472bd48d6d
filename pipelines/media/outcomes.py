"""What one download attempt of the media pipeline came to, as data.

- :class:`Stored` (a file written), :class:`Rejected` (no usable file: ``reason`` is the
  stats key, ``str()`` the item's ``error``), :class:`Redirected` (a hop to check);
- :class:`MediaDownloadError`: a transport failure with its ``reason``, and
  :func:`transport_reason`, the table from Scrapy's download exceptions to reasons;
- :func:`unique` and :func:`failure_summary` for the candidate URLs of one file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.pipelines.media import FileException
from twisted.internet import error as tx_error


@dataclass(frozen=True)
class Stored:
    """A file this pipeline downloaded, checked and wrote."""

    url: str
    path: str
    sha256: str
    mime: str
    size: int
    width: int | None = None
    height: int | None = None
    model_path: str | None = None


@dataclass(frozen=True)
class Rejected:
    """An attempt that produced no usable file; ``str()`` is the item's ``error``."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclass(frozen=True)
class Redirected:
    location: str


Outcome = Stored | Rejected | Redirected


class MediaDownloadError(FileException):
    """A transport failure (timeout, refused connection, body over the size cap …)
    with a stats ``reason``; raised from ``media_failed`` so that the media
    pipeline's per-URL cache keeps the reason for later items with the same URL."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class DropOwnFailureTracebacks(logging.Filter):
    """``MediaPipeline`` logs every failed download with a traceback at ERROR level.
    Our transport failures are expected data (reported per image, at INFO, with a
    stats key), so their records are dropped; every other error still logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, MediaDownloadError)


_TRANSPORT_REASONS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    # The HTTP/1.1 handler cancels a download only for download_maxsize.
    ((DownloadCancelledError,), "too_large"),
    ((DownloadTimeoutError, tx_error.TimeoutError, TimeoutError), "timeout"),
    ((CannotResolveHostError, tx_error.DNSLookupError), "dns_error"),
    ((DownloadConnectionRefusedError, tx_error.ConnectError, ConnectionError), "connection_error"),
    ((ResponseDataLossError, DownloadFailedError), "download_error"),
    ((IgnoreRequest,), "request_ignored"),
)


def transport_reason(exc: BaseException) -> str | None:
    """The stats reason for a download exception, ``None`` when it is not one."""
    return next((reason for types, reason in _TRANSPORT_REASONS if isinstance(exc, types)), None)


def unique(urls: Iterable[str | None]) -> list[str]:
    """Non-empty URLs in order, first occurrence kept."""
    return list(dict.fromkeys(u.strip() for u in urls if u and u.strip()))


def failure_summary(errors: list[Rejected]) -> str:
    last = errors[-1]
    if len(errors) == 1:
        return str(last)
    earlier = ", ".join(e.reason for e in errors[:-1])
    return f"{last} (earlier candidates: {earlier})"
