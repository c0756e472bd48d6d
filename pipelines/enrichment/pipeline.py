"""EnrichmentPipeline: one Gemini request per note, a content cache, deferral, local fallback.

Per note (after the media pipeline filled ``images[i].model_path``):

1. Build the cache key ``<prompt version>/<model family>/<content hash>`` (title, desc,
   tags and the sha256 of every usable image). A note whose ``enrichment`` is already
   ``done`` for that content is left alone; a hit in the Mongo ``enrich_cache``
   collection is copied. Either way no request is spent.
2. Otherwise send ONE ``generateContent`` request carrying the prompt, the note text and
   its labelled images ("Image <i>:" text part before each image; ``i`` is the position
   in ``item.images``), asking for :class:`NoteEnrichment` as structured JSON. A note
   with more than ``ENRICH_MAX_IMAGES_PER_REQUEST`` usable images is split evenly; the
   text goes with the first part, the others ask for :class:`ImageBatch`, and the
   answers are merged.
3. React to the client's verdicts: ``BadInput`` → re-encode the images (dropping those
   that do not decode locally) and retry once; ``TruncatedOutput`` or a wrong number of
   returned images → retry once with the batch halved and no thinking; ``ContentBlocked``
   → failed, not retryable; ``QuotaDeferred`` → deferred until the quota resets, the
   crawl goes on; ``EnrichmentUnavailable`` → Gemini is off for the rest of the run, every
   further note is deferred.

The item is always returned, with ``item.enrichment`` set as described in
docs/architecture.md. Backend ``local`` (rapidocr + extractive summary) runs when Gemini
is not configured or ``ENRICH_BACKEND=local``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from google.genai import types
from itemadapter import ItemAdapter
from pydantic import BaseModel, ValidationError
from pymongo.errors import PyMongoError

from pipelines.enrich_schema import ImageBatch, ImageReading, NoteEnrichment
from pipelines.gemini import (
    BadInput,
    ContentBlocked,
    EnrichmentUnavailable,
    GeminiClient,
    GeminiSettings,
    QuotaDeferred,
    TruncatedOutput,
)
from pipelines.imaging import ImageError, reencode_jpeg
from pipelines.local_backend import LOCAL_VERSION, LocalBackend
from pipelines.mongo import MongoQuotaStateStore, get_mongo
from pipelines.prompts import PromptTemplate, load_prompt

logger = logging.getLogger(__name__)

Backend = Literal["gemini", "local", "off"]
CACHE_COLLECTION = "enrich_cache"
GEMINI_FAMILY = "gemini"
LOCAL_FAMILY = "local"
_MAX_REASON_CHARS = 300
# Failure kinds worth another attempt later (the others would fail the same way again).
RETRYABLE_FAILURES = frozenset({"truncated", "image_count_mismatch", "error"})


# --- Settings ------------------------------------------------------------------------------


def resolve_backend(value: str, *, gemini_configured: bool) -> Backend:
    """``auto`` means Gemini when a key is configured, else the local backend."""
    choice = (value or "auto").strip().lower()
    if choice == "auto":
        return "gemini" if gemini_configured else "local"
    if choice not in ("gemini", "local", "off"):
        raise ValueError(f"ENRICH_BACKEND must be auto|gemini|local|off, not {value!r}")
    return choice  # type: ignore[return-value]


@dataclass(frozen=True)
class EnrichSettings:
    """``ENRICH_BACKEND`` (auto|gemini|local|off), ``ENRICH_CONCURRENCY`` (notes enriched
    at once: coroutine pipelines are not bounded by ``CONCURRENT_ITEMS``),
    ``ENRICH_MAX_IMAGES_PER_REQUEST``, ``ENRICH_PROMPT`` (template file; empty = the
    default Chinese prompt), ``ENRICH_THINKING``, ``ENRICH_RETRY_AFTER`` (seconds before a
    retryable failure is due again) and ``ENRICH_MAX_ATTEMPTS`` (then it stays failed)."""

    backend: Backend
    concurrency: int = 4
    max_images_per_request: int = 9
    prompt_path: str = ""
    files_store: str = "data/images"
    thinking: bool = False
    retry_after: timedelta = timedelta(hours=1)
    max_attempts: int = 5

    @classmethod
    def from_settings(cls, settings: Any) -> EnrichSettings:
        configured = bool(settings.get("GEMINI_API_KEYS") or settings.get("GEMINI_API_KEY"))
        return cls(
            backend=resolve_backend(
                settings.get("ENRICH_BACKEND", "auto"), gemini_configured=configured
            ),
            concurrency=max(1, settings.getint("ENRICH_CONCURRENCY", 4)),
            max_images_per_request=max(1, settings.getint("ENRICH_MAX_IMAGES_PER_REQUEST", 9)),
            prompt_path=settings.get("ENRICH_PROMPT", "") or "",
            # Where the media pipeline stored images[i].path / model_path (same rule).
            files_store=str(
                settings.get("IMAGES_STORE") or settings.get("FILES_STORE") or "data/images"
            ),
            thinking=settings.getbool("ENRICH_THINKING", False),
            retry_after=timedelta(seconds=settings.getfloat("ENRICH_RETRY_AFTER", 3600.0)),
            max_attempts=max(1, settings.getint("ENRICH_MAX_ATTEMPTS", 5)),
        )


# --- Pure helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelImage:
    """One image as sent to the model: its position in ``item.images`` and its bytes."""

    index: int
    data: bytes
    sha256: str
    mime: str = "image/jpeg"


@dataclass(frozen=True)
class NoteInput:
    title: str
    desc: str
    tags: tuple[str, ...]
    images: tuple[ModelImage, ...]


def model_input_hash(note: NoteInput) -> str:
    """Hash of what the model sees: the text fields and each image's sha256, in order."""
    payload = json.dumps(
        {
            "title": note.title,
            "desc": note.desc,
            "tags": list(note.tags),
            "images": [[img.index, img.sha256] for img in note.images],
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def make_cache_key(version: str, family: str, digest: str) -> str:
    return f"{version}/{family}/{digest}"


def split_cache_key(key: str) -> tuple[str, str, str] | None:
    """``(version, family, content hash)`` of a key made by :func:`make_cache_key`."""
    parts = key.rsplit("/", 2) if isinstance(key, str) else []
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def plan_batches(images: Sequence[ModelImage], max_per_request: int) -> list[list[ModelImage]]:
    """Split images into the fewest requests of at most ``max_per_request``, evenly sized.

    Even sizes (12 → 6 + 6 rather than 8 + 4) keep every answer well below the output
    limit. A note without images is one request with no image.
    """
    if not images:
        return [[]]
    count = -(-len(images) // max_per_request)
    size, extra = divmod(len(images), count)
    batches, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        batches.append(list(images[start:end]))
        start = end
    return batches


def image_label(index: int) -> str:
    return f"Image {index}"


def build_parts(prompt: str, images: Sequence[ModelImage]) -> list[types.Part]:
    """The prompt, then for each image its label as a text part followed by the JPEG."""
    parts = [types.Part.from_text(text=prompt)]
    for img in images:
        parts.append(types.Part.from_text(text=f"{image_label(img.index)}:"))
        parts.append(types.Part.from_bytes(data=img.data, mime_type=img.mime))
    return parts


class ImageCountMismatch(Exception):
    """The model did not return exactly one entry per image sent."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"expected {expected} image entries, got {got}")


def align_images(readings: Sequence[ImageReading], expected: Sequence[int]) -> list[ImageReading]:
    """Check the returned entries against the indices sent and return them in that order.

    Entries whose indices are exactly the ones sent are reordered by index; when the
    count matches but the model renumbered them (e.g. from 0 in a later part), they are
    taken in the order returned, which is the order the prompt asks for.
    """
    if len(readings) != len(expected):
        raise ImageCountMismatch(len(expected), len(readings))
    by_index = {r.index: r for r in readings}
    if sorted(by_index) == sorted(expected):
        return [by_index[i] for i in expected]
    return [r.model_copy(update={"index": i}) for r, i in zip(readings, expected, strict=True)]


def merge_batches(first: NoteEnrichment, rest: Sequence[ImageBatch]) -> NoteEnrichment:
    images = [*first.images, *(img for batch in rest for img in batch.images)]
    return first.model_copy(update={"images": sorted(images, key=lambda r: r.index)})


def clip_reason(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 1] + "…"


@dataclass
class Usage:
    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
        }


def enrichment_record(
    *,
    status: str,
    backend: str,
    prompt_version: str | None,
    cache_key: str | None,
    attempts: int,
    now: datetime,
    model: str | None = None,
    key_fp: str | None = None,
    reason: str | None = None,
    next_attempt_at: datetime | None = None,
    result: Mapping[str, Any] | None = None,
    usage: Usage | None = None,
) -> dict[str, Any]:
    """``item.enrichment`` in the shape of the contract (every key always present)."""
    return {
        "status": status,
        "backend": backend,
        "model": model,
        "key_fp": key_fp,
        "prompt_version": prompt_version,
        "cache_key": cache_key,
        "attempts": attempts,
        "reason": reason,
        "next_attempt_at": next_attempt_at,
        "updated_at": now,
        "result": dict(result) if result is not None else None,
        "usage": (usage or Usage()).as_dict(),
    }


# --- Gemini conversation for one note -------------------------------------------------------


class _Failure(Exception):
    """A note's enrichment failed for good (for this attempt): ``kind`` is the stats key."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = clip_reason(f"{kind}: {reason}")


@dataclass
class _Conversation:
    """Requests spent on one note, and who answered the last one."""

    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    key_fp: str | None = None
    dropped: list[int] = field(default_factory=list)


def _reencode(images: Sequence[ModelImage], dropped: list[int]) -> list[ModelImage]:
    """Re-encoded copies of the images that decode locally; the others go to ``dropped``."""
    kept = []
    for img in images:
        try:
            data = reencode_jpeg(img.data)
        except ImageError as exc:
            logger.warning("dropping image %d: it does not decode locally (%s)", img.index, exc)
            dropped.append(img.index)
            continue
        kept.append(ModelImage(index=img.index, data=data, sha256=img.sha256, mime="image/jpeg"))
    return kept


class GeminiEnricher:
    """Runs the requests of one note against a started :class:`GeminiClient`."""

    def __init__(
        self, client: Any, prompt: PromptTemplate, *, max_per_request: int, thinking: bool
    ) -> None:
        self.client = client
        self.prompt = prompt
        self.max_per_request = max_per_request
        self.thinking = thinking

    async def enrich(self, note: NoteInput, conv: _Conversation) -> NoteEnrichment:
        batches = plan_batches(note.images, self.max_per_request)
        first = await self._batch(
            note, batches[0], conv, with_text=True, reencoded=False, halved=False
        )
        rest = []
        for batch in batches[1:]:
            answer = await self._batch(
                note, batch, conv, with_text=False, reencoded=False, halved=False
            )
            if answer is not None:
                rest.append(answer)
        assert isinstance(first, NoteEnrichment)
        return merge_batches(first, rest)

    async def _batch(
        self,
        note: NoteInput,
        images: list[ModelImage],
        conv: _Conversation,
        *,
        with_text: bool,
        reencoded: bool,
        halved: bool,
    ) -> ImageBatch | None:
        if not with_text and not images:
            return None
        labels = [image_label(img.index) for img in images]
        if with_text:
            text = self.prompt.render_note(
                title=note.title, desc=note.desc, tags=list(note.tags), labels=labels
            )
            schema: type[BaseModel] = NoteEnrichment
        else:
            text = self.prompt.render_images(title=note.title, labels=labels)
            schema = ImageBatch
        retry = {"with_text": with_text, "reencoded": reencoded, "halved": halved}
        try:
            generation = await self.client.generate(
                build_parts(text, images), schema, thinking=self.thinking and not halved
            )
        except BadInput as exc:
            conv.usage.requests += 1
            if reencoded:
                raise _Failure("bad_input", str(exc)) from exc
            retry["reencoded"] = True
            return await self._batch(note, _reencode(images, conv.dropped), conv, **retry)
        except TruncatedOutput as exc:
            conv.usage.requests += 1
            if halved:
                raise _Failure("truncated", str(exc)) from exc
            return await self._halves(note, images, conv, retry)
        except ContentBlocked as exc:
            conv.usage.requests += 1
            raise _Failure("content_blocked", str(exc)) from exc

        conv.usage.requests += 1
        conv.usage.prompt_tokens += int(generation.usage.get("prompt_tokens", 0))
        conv.usage.output_tokens += int(generation.usage.get("output_tokens", 0))
        conv.model, conv.key_fp = generation.model, generation.key_fp
        try:
            answer = schema.model_validate(generation.parsed)
            aligned = align_images(answer.images, [img.index for img in images])
        except (ValidationError, ImageCountMismatch) as exc:
            if halved or len(images) < 2:
                kind = "image_count_mismatch" if isinstance(exc, ImageCountMismatch) else "error"
                raise _Failure(kind, str(exc)) from exc
            return await self._halves(note, images, conv, retry)
        return answer.model_copy(update={"images": aligned})

    async def _halves(
        self, note: NoteInput, images: list[ModelImage], conv: _Conversation, retry: dict[str, bool]
    ) -> ImageBatch:
        """Retry a batch as two smaller ones (the text, if any, goes with the first)."""
        middle = (len(images) + 1) // 2
        retry = {**retry, "halved": True}
        first = await self._batch(note, images[:middle], conv, **retry)
        second = await self._batch(note, images[middle:], conv, **{**retry, "with_text": False})
        assert first is not None
        if second is None:
            return first
        return first.model_copy(update={"images": [*first.images, *second.images]})


def client_stats(counters: Mapping[str, float]) -> dict[str, float]:
    """The client's counters under ``gemini/`` (``gemini/requests/<model>``, ``gemini/429/<class>`` …)."""
    return {f"gemini/{name}": value for name, value in counters.items()}


# --- The pipeline -----------------------------------------------------------------------------


class EnrichmentPipeline:
    def __init__(
        self,
        crawler: Any,
        settings: EnrichSettings,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.crawler = crawler
        self.settings = settings
        self.stats = crawler.stats
        self.clock = clock or (lambda: datetime.now(UTC))
        self.prompt = load_prompt(settings.prompt_path)
        self.local = LocalBackend()
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._unavailable: str | None = None
        self._deferred_until: set[datetime] = set()  # deferral times already logged
        self._db: Any = None
        self._cache_enabled = True

    @classmethod
    def from_crawler(cls, crawler: Any) -> EnrichmentPipeline:
        return cls(crawler, EnrichSettings.from_settings(crawler.settings))

    # -- lifecycle --

    async def open_spider(self) -> None:
        self.stats.set_value(f"enrich/backend/{self.settings.backend}", 1)
        if self.settings.backend != "off":
            self._db = await self._database()

    async def close_spider(self) -> None:
        if self._client is not None:
            self._copy_client_stats()
            await self._client.close()
            self._client = None

    async def _database(self) -> Any:
        try:
            return (await get_mongo(self.crawler)).db
        except Exception as exc:  # enrichment works without its cache; storage reports outages
            logger.warning("enrichment cache unavailable (MongoDB): %s", exc)
            return None

    async def _gemini(self) -> Any:
        """The run's client, created and started on first use (None once unavailable)."""
        async with self._client_lock:
            if self._client is None and self._unavailable is None:
                store = (
                    MongoQuotaStateStore(self._db, clock=self.clock)
                    if self._db is not None
                    else None
                )
                client = GeminiClient(
                    GeminiSettings.from_env_like(self.crawler.settings),
                    store,
                    clock=lambda: self.clock().timestamp(),
                )
                try:
                    await client.start()
                except Exception as exc:  # EnrichmentUnavailable, or models.list blew up
                    await client.close()
                    self._mark_unavailable(str(exc))
                    return None
                self._client = client
            return self._client

    def _mark_unavailable(self, reason: str) -> None:
        if self._unavailable is None:
            self._unavailable = clip_reason(f"gemini_unavailable: {reason}")
            logger.error(
                "Gemini is unavailable (%s): enrichment stops using it for this run; the "
                "remaining notes are stored as deferred (run `scrapy crawl enrich` later).",
                reason,
            )

    def _log_deferral(self, exc: QuotaDeferred) -> None:
        """Say once per resume time (not once per note) that notes are being deferred."""
        if exc.next_attempt_at not in self._deferred_until:
            self._deferred_until.add(exc.next_attempt_at)
            logger.warning(
                "Gemini cannot serve now (%s): notes are stored as deferred until %s; "
                "`scrapy crawl enrich` picks them up after that",
                exc,
                exc.next_attempt_at.isoformat(),
            )

    # -- per item --

    async def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        if self.settings.backend == "off":
            if not adapter.get("enrichment"):
                adapter["enrichment"] = enrichment_record(
                    status="skipped",
                    backend="none",
                    prompt_version=None,
                    cache_key=None,
                    attempts=0,
                    now=self.clock(),
                    reason="disabled",
                )
                self.stats.inc_value("enrich/skipped")
            return item
        async with self._semaphore:
            record = await self._enrich(adapter)
        if record is not None:
            adapter["enrichment"] = record
        self._count(adapter["enrichment"])
        if self._client is not None:
            self._copy_client_stats()
        return item

    async def _enrich(self, adapter: ItemAdapter) -> dict[str, Any] | None:
        """The new enrichment record, or None to keep the item's current one."""
        note, unreadable = await asyncio.to_thread(self._note_input, adapter)
        if unreadable:
            self.stats.inc_value("enrich/image_unreadable", unreadable)
        family = GEMINI_FAMILY if self.settings.backend == "gemini" else LOCAL_FAMILY
        version = self.prompt.version if family == GEMINI_FAMILY else LOCAL_VERSION
        digest = model_input_hash(note)
        key = make_cache_key(version, family, digest)
        previous = adapter.get("enrichment") or {}
        if self._keep_previous(previous, digest, family):
            self.stats.inc_value("enrich/cache_hits")
            # Storage flags ``stale`` from URL-level identities; the key just matched the
            # exact bytes and text, so the flag no longer holds (and would keep the note
            # in the `enrich` backlog forever).
            return (
                {k: v for k, v in previous.items() if k != "stale"} if "stale" in previous else None
            )
        previous_key = split_cache_key(previous.get("cache_key") or "")
        same_content = previous_key is not None and previous_key[2] == digest
        attempts = int(previous.get("attempts") or 0) + 1 if same_content else 1
        record = {"prompt_version": version, "cache_key": key, "attempts": attempts}
        if not note.title and not note.desc and not note.images:
            return enrichment_record(
                status="skipped", backend="none", now=self.clock(), reason="empty", **record
            )
        cached = await self._cache_get(key)
        if cached is not None:
            self.stats.inc_value("enrich/cache_hits")
            return enrichment_record(
                status="done",
                backend=cached.get("backend", family),
                model=cached.get("model"),
                key_fp=cached.get("key_fp"),
                now=self.clock(),
                result=cached["result"],
                **record,
            )
        if family == LOCAL_FAMILY:
            return await self._run_local(note, record)
        client = await self._gemini() if self._unavailable is None else None
        if client is None:
            return enrichment_record(
                status="deferred",
                backend="gemini",
                now=self.clock(),
                reason=self._unavailable,
                **record,
            )
        return await self._run_gemini(client, note, record)

    def _keep_previous(self, previous: Mapping[str, Any], digest: str, family: str) -> bool:
        """Whether the item already carries a good enough result for this exact content.

        A Gemini result is kept unless the prompt version changed (and always under the
        local backend: it is the better result). A local result is kept under the local
        backend, and under Gemini too unless this run upgrades local results
        (``scrapy crawl enrich -a include_local=1`` sets ``spider.upgrade_local``).
        """
        if previous.get("status") != "done":
            return False
        parsed = split_cache_key(previous.get("cache_key") or "")
        if parsed is None or parsed[2] != digest:
            return False
        version, previous_family, _ = parsed
        if previous_family == GEMINI_FAMILY:
            return family == LOCAL_FAMILY or version == self.prompt.version
        if family == LOCAL_FAMILY:
            return version == LOCAL_VERSION
        return not getattr(self.crawler.spider, "upgrade_local", False)

    def _note_input(self, adapter: ItemAdapter) -> tuple[NoteInput, int]:
        """The note's text and the bytes of its usable images (runs in a worker thread).

        Images the media pipeline did not store (``status`` other than ``ok``) are left
        out; the downscaled JPEG (``model_path``) is preferred over the stored original.
        """
        store = Path(self.settings.files_store)
        images: list[ModelImage] = []
        unreadable = 0
        for index, image in enumerate(adapter.get("images") or []):
            img = ItemAdapter(image)
            if img.get("status") != "ok":
                continue
            relative = img.get("model_path") or img.get("path")
            mime = "image/jpeg" if img.get("model_path") else img.get("mime") or "image/jpeg"
            if not relative:
                continue
            try:
                data = (store / relative).read_bytes()
            except OSError as exc:
                logger.warning(
                    "image %d of note %s unreadable: %s", index, adapter.get("note_id"), exc
                )
                unreadable += 1
                continue
            digest = img.get("sha256") or hashlib.sha256(data).hexdigest()
            images.append(ModelImage(index=index, data=data, sha256=digest, mime=mime))
        note = NoteInput(
            title=(adapter.get("title") or "").strip(),
            desc=(adapter.get("desc") or "").strip(),
            tags=tuple(adapter.get("tags") or ()),
            images=tuple(images),
        )
        return note, unreadable

    async def _run_local(self, note: NoteInput, record: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await self.local.enrich(
                title=note.title,
                desc=note.desc,
                tags=note.tags,
                images=[(img.index, img.data) for img in note.images],
            )
        except Exception as exc:  # OCR/jieba internals: record it, keep crawling
            logger.warning("local enrichment failed: %s", exc)
            return self._failed(
                "error", f"{type(exc).__name__}: {exc}", {**record, "backend": "local"}
            )
        payload = result.model_dump()
        await self._cache_put(
            record["cache_key"], {"backend": "local", "model": "rapidocr", "result": payload}
        )
        return enrichment_record(
            status="done",
            backend="local",
            model="rapidocr",
            now=self.clock(),
            result=payload,
            **record,
        )

    async def _run_gemini(
        self, client: Any, note: NoteInput, record: dict[str, Any]
    ) -> dict[str, Any]:
        conv = _Conversation()
        enricher = GeminiEnricher(
            client,
            self.prompt,
            max_per_request=self.settings.max_images_per_request,
            thinking=self.settings.thinking,
        )
        common = {"backend": "gemini", "usage": conv.usage, **record}
        try:
            result = await enricher.enrich(note, conv)
        except QuotaDeferred as exc:
            self._log_deferral(exc)
            return enrichment_record(
                status="deferred",
                now=self.clock(),
                reason=clip_reason(str(exc)),
                next_attempt_at=exc.next_attempt_at,
                **common,
            )
        except EnrichmentUnavailable as exc:
            self._mark_unavailable(str(exc))
            return enrichment_record(
                status="deferred", now=self.clock(), reason=self._unavailable, **common
            )
        except _Failure as exc:
            return self._failed(exc.kind, exc.reason, common, model=conv.model, key_fp=conv.key_fp)
        except Exception as exc:  # transport errors the client left unclassified
            logger.warning("Gemini enrichment failed: %s: %s", type(exc).__name__, exc)
            return self._failed("error", f"{type(exc).__name__}: {exc}", common)
        if conv.dropped:
            self.stats.inc_value("enrich/images_dropped", len(conv.dropped))
        payload = result.model_dump()
        await self._cache_put(
            record["cache_key"],
            {"backend": "gemini", "model": conv.model, "key_fp": conv.key_fp, "result": payload},
        )
        return enrichment_record(
            status="done",
            model=conv.model,
            key_fp=conv.key_fp,
            now=self.clock(),
            result=payload,
            **common,
        )

    def _failed(
        self, kind: str, reason: str, record: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        """A failed record; retryable kinds get a next attempt until attempts run out."""
        now = self.clock()
        retry = kind in RETRYABLE_FAILURES and record["attempts"] < self.settings.max_attempts
        self.stats.inc_value(f"enrich/failed/{kind}")
        fields = {"backend": "gemini", **record, **extra}
        return enrichment_record(
            status="failed",
            now=now,
            reason=clip_reason(reason),
            next_attempt_at=now + self.settings.retry_after if retry else None,
            **fields,
        )

    # -- cache --

    async def _cache_get(self, key: str) -> dict[str, Any] | None:
        if self._db is None or not self._cache_enabled:
            return None
        try:
            return await self._db[CACHE_COLLECTION].find_one({"_id": key})
        except PyMongoError as exc:
            self._cache_down(exc)
            return None

    async def _cache_put(self, key: str, entry: dict[str, Any]) -> None:
        if self._db is None or not self._cache_enabled:
            return
        try:
            await self._db[CACHE_COLLECTION].replace_one(
                {"_id": key}, {**entry, "created_at": self.clock()}, upsert=True
            )
        except PyMongoError as exc:
            self._cache_down(exc)

    def _cache_down(self, exc: PyMongoError) -> None:
        """A cache outage costs requests, never a note: stop using the cache for this run
        (storage has its own outage handling) instead of waiting on every note."""
        self._cache_enabled = False
        self.stats.inc_value("enrich/cache_errors")
        logger.warning(
            "enrichment cache disabled for this run: MongoDB error %s", type(exc).__name__
        )

    # -- stats --

    def _count(self, enrichment: Mapping[str, Any] | None) -> None:
        status = (enrichment or {}).get("status")
        if status in ("done", "deferred", "skipped"):
            self.stats.inc_value(f"enrich/{status}")

    def _copy_client_stats(self) -> None:
        """Mirror the client's counters into Scrapy stats (absolute values, not deltas)."""
        for name, value in client_stats(self._client.stats).items():
            self.stats.set_value(name, value)
