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
* **A cap per note.** Only the first ``MEDIA_MAX_IMAGES_PER_NOTE`` (18, as on the real
  site) pictures are fetched; the rest are ``skipped`` with reason ``image_cap``.
* **Failures are data.** The note is always returned; a failed image gets
  ``status="failed"`` and ``error="<reason>: <detail>"`` (the last candidate's
  reason, earlier candidates' reasons in brackets), and a stats key.

Settings: ``IMAGES_STORE`` (``FILES_STORE``), :class:`MediaSettings`' knobs,
``MEDIA_ALLOW_REDIRECTS``, plus the URL policy's ``XHS_BASE_URL`` and ``XHS_IMAGE_HOSTS``.

Stats: ``media/images_ok``, ``media/images_failed/<reason>``, ``media/images_skipped``
(no URL, or over the cap: also ``media/images_skipped/image_cap``), ``media/bytes``, ``media/candidate_fallbacks``, ``media/skipped_existing``,
``media/url_refused/<reason>``, ``media/videos_ok``, ``media/videos_failed/<reason>``
(a full image store: reason ``no_space``, one ERROR line per run).

Why this module is over 400 lines: it is one class, and its two halves (the candidate
and redirect loop above, Scrapy's media-pipeline hooks below) both work through the
base class's per-URL cache and the same ``_Attempt`` carrier; the settings, outcomes
and store live in their own modules.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies, proxy_bypass

from scrapy.http import Request, Response
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.files import FilesPipeline
from scrapy.utils.asyncio import run_in_thread
from scrapy.utils.defer import ensure_awaitable

from crawler.core.items import NoteImage, NoteItem, NoteVideo
from pipelines.guard import guard_item
from pipelines.imaging import (
    MIME_EXTENSIONS,
    ImageError,
    inspect_and_downscale,
    sniff_mime,
    sniff_video_mime,
)
from pipelines.media.outcomes import (
    DropOwnFailureTracebacks,
    MediaDownloadError,
    Outcome,
    Redirected,
    Rejected,
    Stored,
    failure_summary,
    transport_reason,
    unique,
)
from pipelines.media.settings import MediaSettings
from pipelines.media.store import MediaStore, content_path, store_uri
from pipelines.urlsafety import Resolver, UrlPolicy, system_resolver

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.pipelines.media import FileInfoOrError, MediaPipeline
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

_IMAGE_ACCEPT = "image/webp,image/avif,image/jpeg,image/png,image/*;q=0.8,*/*;q=0.5"
_VIDEO_ACCEPT = "video/mp4,video/*;q=0.9,*/*;q=0.5"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

MediaKind = Literal["image", "video"]


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
            if crawler.settings.getbool("HTTPPROXY_ENABLED")
            else frozenset()
        )
        self._decode_slots = asyncio.Semaphore(self.config.decode_concurrency)
        self._log_filter = DropOwnFailureTracebacks()
        self.media_store = MediaStore(self.store)
        self._no_space_logged = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        cls._update_stores(crawler.settings)
        return cls(store_uri(crawler.settings), crawler=crawler)

    def open_spider(self) -> None:
        super().open_spider()
        logging.getLogger("scrapy.pipelines.media").addFilter(self._log_filter)

    def close_spider(self) -> None:
        logging.getLogger("scrapy.pipelines.media").removeFilter(self._log_filter)

    # --- per note ---------------------------------------------------------------------

    @guard_item("media")
    async def process_item(self, item: NoteItem) -> NoteItem:  # type: ignore[override]
        """Fill the file fields of every image (and the video when enabled); never
        raises for a media problem: the note goes on to enrichment and storage."""
        if not isinstance(item, NoteItem):  # a profile (UserItem): no media of its own
            return item
        cap = self.config.max_images_per_note
        self._skip_over_cap(item.images, cap)
        jobs = [
            self._guarded_image(item.note_id, i, img) for i, img in enumerate(item.images[:cap])
        ]
        if item.video is not None and self.config.download_videos:
            jobs.append(self._guarded_video(item.note_id, item.video))
        elif item.video is not None and item.video.status != "ok":
            # Not `pending` forever: nothing will fetch it while downloads are off.
            item.video.status, item.video.error = "skipped", "download_off: XHS_DOWNLOAD_VIDEOS"
        await asyncio.gather(*jobs)
        return item

    def _skip_over_cap(self, images: list[NoteImage], cap: int) -> None:
        """Pictures past ``MEDIA_MAX_IMAGES_PER_NOTE`` are not fetched (issue 18: a note
        listing thousands would cost thousands of fetches and model requests); each is
        recorded ``skipped`` with reason ``image_cap``. One stored before stays as it is."""
        for image in images[cap:]:
            if image.status == "ok":
                continue
            image.status = "skipped"
            image.error = (
                f"image_cap: the note lists {len(images)} pictures, the first {cap} are "
                "fetched (MEDIA_MAX_IMAGES_PER_NOTE)"
            )
            image.model_path = None
            self._inc("media/images_skipped")
            self._inc("media/images_skipped/image_cap")

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
        target.status, target.error = "failed", failure_summary(outcome)
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
        if not wanted:
            return False
        for path in wanted:
            if not await self.media_store.exists(path, getattr(self, "spiderinfo", None)):
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
        """Write one file; a full disk (or quota) is the image's named failure
        ``no_space``, logged once per run without a traceback, and the crawl goes on."""
        try:
            await ensure_awaitable(self.store.persist_file(path, BytesIO(data), info))
        except OSError as exc:
            if exc.errno not in _NO_SPACE_ERRNOS:
                raise
            if not self._no_space_logged:
                self._no_space_logged = True
                logger.error(
                    "image store full (%s): files not written are recorded as no_space; "
                    "the crawl goes on",
                    exc.strerror or errno.errorcode.get(exc.errno or 0, "ENOSPC"),
                )
            raise MediaDownloadError("no_space", exc.strerror or "no space left") from None


_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
