"""NoteMediaPipeline: the pictures (and, opt-in, the video) of each note.

Built on Scrapy's ``FilesPipeline``: downloads go through the engine and the
downloader middlewares, identical URLs are fetched once per run (the media
pipeline's own cache), and files are written by the configured files store.
What this subclass adds:

* **Candidates with fallback.** An image is tried at its original-quality URLs first
  (``original_urls``), then at the page URL; the next candidate is only requested
  when the previous one failed (HTTP error, not an image, too big, refused host).
  Images of a note are fetched in parallel, the candidates of one image in order.
  Each attempt is one ``MediaPipeline.process_item`` call on a one-request carrier,
  so the per-URL cache and de-duplication of the base class apply to every attempt.
* **URL safety.** Every URL, including every redirect hop, passes
  ``pipelines.urlsafety.UrlPolicy`` (with DNS resolution) before a request exists;
  redirects are followed here, not by RedirectMiddleware, for that reason. The
  address the response really came from is checked again.
* **Real types, content paths.** The type comes from the magic bytes and a complete
  decode (``pipelines.imaging``); files live at ``full/ab/<sha256>.<ext>`` with a
  1536 px JPEG copy for the model at ``model/ab/<sha256>.jpg`` and videos at
  ``video/ab/<sha256>.mp4``: nothing from titles or URLs ever reaches a path.
* **Incremental.** An image already ``ok`` whose files exist in the store (fields
  copied from Mongo by the incremental stage) is not downloaded again.
* **Failures are data.** The note is always returned; a failed image gets
  ``status="failed"`` and ``error="<reason>: <detail>"`` (the last candidate's
  reason, earlier candidates' reasons in brackets), and a stats key.

Settings: ``IMAGES_STORE``, ``MEDIA_MAX_BYTES`` (20 MiB), ``MEDIA_MAX_VIDEO_BYTES``,
``MEDIA_DOWNLOAD_TIMEOUT`` (``DOWNLOAD_TIMEOUT``), ``MEDIA_MODEL_LONG_SIDE`` (1536),
``MEDIA_MAX_PIXELS``, ``MEDIA_MAX_REDIRECTS``, ``MEDIA_DECODE_CONCURRENCY``,
``XHS_DOWNLOAD_VIDEOS`` (off), ``MEDIA_ALLOW_REDIRECTS``, plus the URL policy's
``XHS_BASE_URL`` and ``XHS_IMAGE_HOSTS``.

Stats: ``media/images_ok``, ``media/images_failed/<reason>``, ``media/images_skipped``
(no URL), ``media/bytes``, ``media/candidate_fallbacks``, ``media/skipped_existing``,
``media/url_refused/<reason>``, ``media/videos_ok``, ``media/videos_failed/<reason>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies, proxy_bypass

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Request, Response
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.files import FilesPipeline, FSFilesStore
from scrapy.pipelines.media import FileException
from scrapy.utils.asyncio import run_in_thread
from scrapy.utils.defer import ensure_awaitable
from twisted.internet import error as tx_error

from crawler.core.items import NoteImage, NoteItem, NoteVideo
from pipelines.imaging import (
    DEFAULT_MAX_PIXELS,
    MIME_EXTENSIONS,
    MODEL_LONG_SIDE,
    ImageError,
    inspect_and_downscale,
    sniff_mime,
    sniff_video_mime,
)
from pipelines.urlsafety import Resolver, UrlPolicy, system_resolver

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.pipelines.media import FileInfoOrError, MediaPipeline
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
_IMAGE_ACCEPT = "image/webp,image/avif,image/jpeg,image/png,image/*;q=0.8,*/*;q=0.5"
_VIDEO_ACCEPT = "video/mp4,video/*;q=0.9,*/*;q=0.5"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: The only shape of path this pipeline writes, and so the only one it trusts when a
#: stored item (from Mongo) claims a file already exists.
_CONTENT_PATH = re.compile(r"(full|model|video)/([0-9a-f]{2})/\2[0-9a-f]{62}\.[a-z0-9]{2,4}")

MediaKind = Literal["image", "video"]


@dataclass(frozen=True)
class MediaSettings:
    """The pipeline's knobs, read once from the Scrapy settings."""

    max_bytes: int = 20 * MIB
    max_video_bytes: int = 200 * MIB
    timeout: float = 30.0
    model_long_side: int = MODEL_LONG_SIDE
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_redirects: int = 3
    download_videos: bool = False
    # Images decoded at once (threads): bounds CPU and memory, whatever CONCURRENT_ITEMS.
    decode_concurrency: int = max(1, min(4, os.cpu_count() or 1))
    referer: str = ""

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> MediaSettings:
        base = str(settings.get("XHS_BASE_URL") or "").rstrip("/")
        return cls(
            max_bytes=settings.getint("MEDIA_MAX_BYTES", cls.max_bytes),
            max_video_bytes=settings.getint("MEDIA_MAX_VIDEO_BYTES", cls.max_video_bytes),
            timeout=settings.getfloat(
                "MEDIA_DOWNLOAD_TIMEOUT", settings.getfloat("DOWNLOAD_TIMEOUT", cls.timeout)
            ),
            model_long_side=settings.getint("MEDIA_MODEL_LONG_SIDE", cls.model_long_side),
            max_pixels=settings.getint("MEDIA_MAX_PIXELS", cls.max_pixels),
            max_redirects=settings.getint("MEDIA_MAX_REDIRECTS", cls.max_redirects),
            download_videos=settings.getbool("XHS_DOWNLOAD_VIDEOS", cls.download_videos),
            decode_concurrency=max(
                1, settings.getint("MEDIA_DECODE_CONCURRENCY", cls.decode_concurrency)
            ),
            referer=f"{base}/" if base else "",
        )


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


class _DropOwnFailureTracebacks(logging.Filter):
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


def content_path(folder: str, sha256: str, extension: str) -> str:
    """``folder/ab/abcdef….ext``: two-level fan-out by content hash."""
    return f"{folder}/{sha256[:2]}/{sha256}.{extension}"


def is_content_path(path: str | None) -> bool:
    return bool(path) and _CONTENT_PATH.fullmatch(path or "") is not None


def unique(urls: Iterable[str | None]) -> list[str]:
    """Non-empty URLs in order, first occurrence kept."""
    return list(dict.fromkeys(u.strip() for u in urls if u and u.strip()))


def _failure_summary(errors: list[Rejected]) -> str:
    last = errors[-1]
    if len(errors) == 1:
        return str(last)
    earlier = ", ".join(e.reason for e in errors[:-1])
    return f"{last} (earlier candidates: {earlier})"


@dataclass
class _Attempt:
    """What ``MediaPipeline.process_item`` sees as an "item": one request of one kind.

    Going through the base ``process_item`` (rather than calling the download
    internals) keeps the per-URL cache, de-duplication and hooks of Scrapy's media
    pipeline for every single attempt."""

    request: Request
    kind: MediaKind


class NoteMediaPipeline(FilesPipeline):
    MEDIA_NAME = "image"

    def __init__(
        self,
        store_uri: str,
        *,
        crawler: Crawler,
        resolver: Resolver = system_resolver,
    ) -> None:
        super().__init__(store_uri, crawler=crawler)
        self.config = MediaSettings.from_settings(crawler.settings)
        self.policy = UrlPolicy.from_settings(crawler.settings)
        self.resolver = resolver
        # Schemes Scrapy's HttpProxyMiddleware sends through an environment proxy.
        self._env_proxy_schemes = (
            frozenset(getproxies()) & {"http", "https"}
            if crawler.settings.getbool("HTTPPROXY_ENABLED", True)
            else frozenset()
        )
        self._decode_slots = asyncio.Semaphore(self.config.decode_concurrency)
        self._log_filter = _DropOwnFailureTracebacks()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        # IMAGES_STORE is the project's name for the store (NoteImage.path is relative
        # to it); FILES_STORE is honoured when only that one is set.
        settings = crawler.settings
        cls._update_stores(settings)
        return cls(settings.get("IMAGES_STORE") or settings.get("FILES_STORE"), crawler=crawler)

    def open_spider(self) -> None:
        super().open_spider()
        logging.getLogger("scrapy.pipelines.media").addFilter(self._log_filter)

    def close_spider(self) -> None:
        logging.getLogger("scrapy.pipelines.media").removeFilter(self._log_filter)

    # --- per note ---------------------------------------------------------------------

    async def process_item(self, item: NoteItem) -> NoteItem:  # type: ignore[override]
        """Fill the file fields of every image (and the video when enabled); never
        raises for a media problem: the note goes on to enrichment and storage."""
        jobs = [self._guarded_image(item.note_id, i, img) for i, img in enumerate(item.images)]
        if item.video is not None and self.config.download_videos:
            jobs.append(self._guarded_video(item.note_id, item.video))
        await asyncio.gather(*jobs)
        return item

    async def _guarded_image(self, note_id: str, index: int, image: NoteImage) -> None:
        try:
            await self._process_image(note_id, index, image)
        except Exception as exc:  # a bug here must not cost the note
            logger.exception("note %s image %d: unexpected media error", note_id, index)
            image.status, image.error = "failed", f"internal_error: {type(exc).__name__}"
            self._inc("media/images_failed/internal_error")

    async def _guarded_video(self, note_id: str, video: NoteVideo) -> None:
        try:
            await self._process_video(note_id, video)
        except Exception as exc:  # a bug here must not cost the note
            logger.exception("note %s video: unexpected media error", note_id)
            video.status, video.error = "failed", f"internal_error: {type(exc).__name__}"
            self._inc("media/videos_failed/internal_error")

    async def _process_image(self, note_id: str, index: int, image: NoteImage) -> None:
        if image.status == "ok" and await self._already_stored(image.path, image.model_path):
            self._inc("media/skipped_existing")
            return
        candidates = unique([*image.original_urls, image.url])
        if not candidates:
            image.status, image.error = "skipped", "no_candidates: the image has no URL"
            self._inc("media/images_skipped")
            return
        outcome = await self._first_success(candidates, "image")
        self._settle(image, outcome, "image", f"note {note_id} image {index}")
        if isinstance(outcome, Stored):
            image.model_path, image.width, image.height = (
                outcome.model_path,
                outcome.width,
                outcome.height,
            )
        else:
            image.model_path = None

    async def _process_video(self, note_id: str, video: NoteVideo) -> None:
        # NoteVideo's file fields (path, sha256, mime, bytes, status, error) mirror
        # NoteImage's; read defensively so an item built without them still works.
        stored = getattr(video, "status", None) == "ok"
        if stored and await self._already_stored(getattr(video, "path", None)):
            self._inc("media/skipped_existing")
            return
        outcome = await self._first_success(unique([video.url, *video.candidates]), "video")
        self._settle(video, outcome, "video", f"note {note_id} video")

    def _settle(
        self,
        target: NoteImage | NoteVideo,
        outcome: Stored | list[Rejected],
        kind: MediaKind,
        label: str,
    ) -> None:
        """The file fields both images and videos carry, and the stats."""
        if isinstance(outcome, Stored):
            target.path, target.sha256 = outcome.path, outcome.sha256
            target.mime, target.bytes = outcome.mime, outcome.size
            target.status, target.error = "ok", None
            self._inc(f"media/{kind}s_ok")
            return
        target.path = target.sha256 = target.mime = None
        target.bytes = None
        target.status, target.error = "failed", _failure_summary(outcome)
        self._inc(f"media/{kind}s_failed/{outcome[-1].reason}")
        logger.info("%s failed after %d candidate(s): %s", label, len(outcome), target.error)

    async def _first_success(
        self, candidates: list[str], kind: MediaKind
    ) -> Stored | list[Rejected]:
        """Try ``candidates`` one after the other: the first stored file, or every
        rejection in order."""
        errors: list[Rejected] = []
        for position, url in enumerate(candidates):
            if position:
                self._inc("media/candidate_fallbacks")
            outcome = await self._fetch(url, kind, last=position == len(candidates) - 1)
            if isinstance(outcome, Stored):
                return outcome
            errors.append(outcome)
        return errors

    async def _fetch(self, url: str, kind: MediaKind, *, last: bool) -> Stored | Rejected:
        """One candidate, following redirects itself so every hop passes the policy."""
        for _ in range(self.config.max_redirects + 1):
            try:
                request = self._media_request(url, kind, last=last)
            except (TypeError, ValueError) as exc:
                return Rejected("invalid_url", str(exc)[:120])
            if self._proxied(request):
                # The proxy resolves the name (often the only resolver there is); the
                # URL rules still apply, literal addresses included.
                refusal = self.policy.check(request.url)
            else:
                refusal = await self.policy.check_resolved(request.url, self.resolver)
            if refusal is not None:
                self._inc(f"media/url_refused/{refusal.reason}")
                return Rejected(refusal.reason, refusal.detail)
            outcome = await self._download(_Attempt(request, kind))
            if not isinstance(outcome, Redirected):
                return outcome
            url = outcome.location
        return Rejected("too_many_redirects", f"more than {self.config.max_redirects}")

    def _proxied(self, request: Request) -> bool:
        """Whether the request will go through a proxy (``meta["proxy"]`` or the
        ``http_proxy``/``https_proxy`` environment, minus ``no_proxy``), the way
        Scrapy's HttpProxyMiddleware decides."""
        if "proxy" in request.meta:
            return request.meta["proxy"] is not None
        parts = urlsplit(request.url)
        return parts.scheme in self._env_proxy_schemes and not proxy_bypass(parts.hostname or "")

    def _media_request(self, url: str, kind: MediaKind, *, last: bool) -> Request:
        headers = {"Accept": _IMAGE_ACCEPT if kind == "image" else _VIDEO_ACCEPT}
        if self.config.referer:
            headers["Referer"] = self.config.referer
        return Request(
            url,
            headers=headers,
            callback=NO_CALLBACK,
            meta={
                "download_maxsize": (
                    self.config.max_bytes if kind == "image" else self.config.max_video_bytes
                ),
                "download_timeout": self.config.timeout,
                "dont_redirect": True,
                "dont_merge_cookies": True,  # no site cookies to a CDN
                # A failing candidate that has a successor falls back instead of
                # retrying (e.g. `ci` URLs answering 500); the last one may retry.
                "dont_retry": not last,
            },
        )

    async def _download(self, attempt: _Attempt) -> Outcome:
        ok, value = await super().process_item(attempt)
        if ok:
            return value
        exc = value.value
        if isinstance(exc, MediaDownloadError):
            return Rejected(exc.reason, exc.detail)
        return Rejected("internal_error", type(exc).__name__)

    async def _already_stored(self, *paths: str | None) -> bool:
        """True when every given path (``None`` ones ignored, at least one set) is a
        path of the shape this pipeline writes and exists in the store."""
        wanted = [p for p in paths if p is not None]
        if not wanted or not all(is_content_path(p) for p in wanted):
            return False
        for path in wanted:
            if isinstance(self.store, FSFilesStore):
                exists = Path(self.store.basedir, *path.split("/")).is_file()
            else:
                stat = await ensure_awaitable(self.store.stat_file(path, self.spiderinfo))
                exists = bool(stat)
            if not exists:
                return False
        return True

    def _inc(self, key: str, count: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key, count)

    # --- Scrapy's media pipeline hooks, for one _Attempt ------------------------------

    def get_media_requests(self, item: Any, info: MediaPipeline.SpiderInfo) -> list[Request]:
        return [item.request]

    def media_to_download(
        self, request: Request, info: MediaPipeline.SpiderInfo, *, item: Any = None
    ) -> None:
        """Always download: paths depend on the content, unknown before the download
        (a stored image is recognised from the item before any request)."""
        return None

    def item_completed(
        self, results: list[FileInfoOrError], item: Any, info: MediaPipeline.SpiderInfo
    ) -> Any:
        return results[0]

    def media_failed(
        self, failure: Failure, request: Request, info: MediaPipeline.SpiderInfo
    ) -> None:
        exc = failure.value
        if isinstance(exc, MediaDownloadError):
            raise exc
        reason = transport_reason(exc)
        if reason is None:
            logger.error(
                "unexpected error for media %s",
                request.url,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            reason = "internal_error"
        if reason == "too_large":
            detail = f"body over {request.meta.get('download_maxsize')} bytes"
        elif reason == "timeout":
            detail = f"no complete answer in {request.meta.get('download_timeout')} s"
        else:
            detail = str(exc).split(" in request ")[0][:160] or type(exc).__name__
        raise MediaDownloadError(reason, detail) from None

    async def media_downloaded(
        self,
        response: Response,
        request: Request,
        info: MediaPipeline.SpiderInfo,
        *,
        item: Any = None,
    ) -> Outcome:  # type: ignore[override]
        host = urlsplit(request.url).hostname or ""
        # The peer really connected to (DNS may have changed since the check). Through
        # a proxy (request.meta["proxy"]) the peer is the proxy, which is the operator's
        # choice, so the check is skipped.
        if response.ip_address is not None and not request.meta.get("proxy"):
            refusal = self.policy.check_addresses(host, [str(response.ip_address)])
            if refusal is not None:
                self._inc(f"media/url_refused/{refusal.reason}")
                return Rejected(refusal.reason, refusal.detail)
        location = response.headers.get("Location")
        if response.status in _REDIRECT_STATUSES and location and self.allow_redirects:
            return Redirected(urljoin(request.url, location.decode("latin-1")))
        if response.status != 200:
            return Rejected(f"http_{response.status}", host)
        if item.kind == "video":
            return await self._store_video(request, response.body, info)
        return await self._store_image(request, response.body, info)

    def file_path(
        self,
        request: Request,
        response: Response | None = None,
        info: MediaPipeline.SpiderInfo | None = None,
        *,
        item: Any = None,
    ) -> str:
        """Scrapy's path hook, answered the way ``_store_image``/``_store_video`` store:
        ``full/ab/<sha256>.<ext>`` (``video/…`` for videos) from the response body and
        its sniffed type; the URL plays no part (the base class would hash the URL)."""
        if response is None:
            raise ValueError("content-addressed paths need the response body")
        body = response.body
        is_video = item is not None and item.kind == "video"
        mime = sniff_video_mime(body) if is_video else sniff_mime(body)
        if mime is None:
            raise ValueError("unknown content type")
        folder = "video" if is_video else "full"
        return content_path(folder, _sha256_hex(body), MIME_EXTENSIONS[mime])

    async def _store_image(
        self, request: Request, body: bytes, info: MediaPipeline.SpiderInfo
    ) -> Outcome:
        try:
            async with self._decode_slots:
                image, model_jpeg = await run_in_thread(
                    inspect_and_downscale,
                    body,
                    self.config.model_long_side,
                    max_pixels=self.config.max_pixels,
                )
        except ImageError as exc:
            return Rejected(exc.reason, exc.detail)
        sha = await run_in_thread(_sha256_hex, body)
        path = content_path("full", sha, MIME_EXTENSIONS[image.mime])
        model_path = content_path("model", sha, "jpg")
        await self._persist(path, body, info)
        await self._persist(model_path, model_jpeg, info)
        self._inc("media/bytes", len(body))
        return Stored(
            request.url, path, sha, image.mime, len(body), image.width, image.height, model_path
        )

    async def _store_video(
        self, request: Request, body: bytes, info: MediaPipeline.SpiderInfo
    ) -> Outcome:
        if not body:
            return Rejected("empty_body", "0 bytes")
        mime = sniff_video_mime(body)
        if mime is None:
            return Rejected("not_a_video", f"magic bytes {body[:12].hex()}")
        sha = await run_in_thread(_sha256_hex, body)
        path = content_path("video", sha, MIME_EXTENSIONS[mime])
        await self._persist(path, body, info)
        self._inc("media/bytes", len(body))
        return Stored(request.url, path, sha, mime, len(body))

    async def _persist(self, path: str, data: bytes, info: MediaPipeline.SpiderInfo) -> None:
        await ensure_awaitable(self.store.persist_file(path, BytesIO(data), info))


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
