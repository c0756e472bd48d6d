"""EnrichmentPipeline: one Gemini request per note (packs of notes when the day's quota
binds), a content cache, deferral, local fallback.

Per note (after the media pipeline filled ``images[i].model_path``):

1. Read the note's usable images through the media store (:class:`MediaStore`) and
   build the cache key ``<prompt version>/<model family>/<content hash>``. A note whose
   ``enrichment`` is already ``done`` for that content is left alone; a hit in the
   ``enrich_cache`` collection is copied. Either way no request is spent.
2. Otherwise run the backend: :class:`GeminiRunner` (one request per note of up to
   ``ENRICH_MAX_IMAGES_PER_REQUEST`` images, a bounded retry loop, see its module) or
   :class:`LocalRunner` (rapidocr + extractive summary) when Gemini is not configured
   or ``ENRICH_BACKEND=local``. When the day's requests cannot cover the notes due
   (:func:`packing.should_pack`; ``ENRICH_PACK``; the notes due: see ``_notes_due``),
   Gemini notes go through the :class:`PackQueue` instead: several notes per request,
   each answer checked per note. The request for a note whose thread was not read in
   this crawl carries its stored comments (:mod:`.stored_comments`).
   Notes waiting for a pack are bounded by ``ENRICH_MAX_NOTES_PER_REQUEST`` ×
   ``GEMINI_MAX_IN_FLIGHT``, not by ``ENRICH_CONCURRENCY``.
3. Turn the verdict into an :class:`EnrichmentState`: ``done``; ``failed`` with a
   reason (retryable kinds get ``next_attempt_at`` until ``ENRICH_MAX_ATTEMPTS``);
   ``deferred`` until the quota resets (``QuotaDeferred``) or for the rest of the run
   once Gemini is unavailable (``EnrichmentUnavailable``); deferred with no request
   spent when the cache lookup got no answer from MongoDB (``cache_unavailable``: the
   content may have been paid for already) or the run was asked to stop (SIGINT/SIGTERM:
   no request is started then, ``_stopping``); ``skipped`` for an empty note
   or with ``ENRICH_BACKEND=off``.

The item is always returned, with ``item.enrichment`` an :class:`EnrichmentState`.

(Over 400 lines: this is the one place the backends, the cache, packing, claims and the
client's life cycle meet per item; each of those is its own module already, what stays
is the routing between them and the state each outcome becomes.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itemadapter import ItemAdapter

from crawler.core.enrichment_state import (
    Backend,
    EnrichmentState,
    EnrichmentStatus,
    EnrichmentUsage,
    backlog_query,
)
from crawler.core.items import NoteItem
from crawler.core.names import NOTES
from crawler.core.run_context import RunContext
from crawler.core.timeutil import Clock
from pipelines.enrichment.cache import CacheUnavailable, EnrichCache, journal_beside
from pipelines.enrichment.failures import EnrichFailure, clip_reason
from pipelines.enrichment.gemini_runner import Conversation, GeminiRunner
from pipelines.enrichment.inputs import (
    GEMINI_FAMILY,
    LOCAL_FAMILY,
    NoteInput,
    make_cache_key,
    model_input_hash,
    note_input,
    split_cache_key,
)
from pipelines.enrichment.local_runner import LOCAL_MODEL, LOCAL_VERSION, LocalRunner
from pipelines.enrichment.minute_window import RedisMinuteWindow
from pipelines.enrichment.pack_queue import PackQueue, PackSettings
from pipelines.enrichment.packing import PackMode, should_pack
from pipelines.enrichment.settings import EnrichBackend, EnrichSettings
from pipelines.enrichment.stored_comments import StoredComments, with_stored
from pipelines.gemini import (
    EnrichmentUnavailable,
    GeminiClient,
    GeminiSettings,
    QuotaDeferred,
    SendingStopped,
)
from pipelines.guard import guard_item
from pipelines.media import MediaStore
from pipelines.mongo import (
    MongoQuotaLedger,
    MongoQuotaStateStore,
    NoteClaims,
    crawl_run_id,
    get_mongo,
)
from pipelines.prompts import load_prompt

logger = logging.getLogger(__name__)

# A note reached its request after the run was asked to stop (see ``_stopping``).
STOPPING_REASON = "run_stopping: the run was asked to stop before this note's request"
# The cache could not say whether the note's content was answered before (an outage).
CACHE_UNAVAILABLE = "cache_unavailable"


def client_stats(counters: Mapping[str, float]) -> dict[str, float]:
    """The client's counters under ``gemini/`` (``gemini/requests/<model>``, ``gemini/429/<class>`` …)."""
    return {f"gemini/{name}": value for name, value in counters.items()}


@dataclass(frozen=True)
class _Attempt:
    """What every state of this attempt at a note carries."""

    prompt_version: str
    cache_key: str
    attempts: int


class EnrichmentPipeline:
    def __init__(
        self,
        crawler: Any,
        settings: EnrichSettings,
        *,
        clock: Clock | None = None,
        media: MediaStore | None = None,
    ) -> None:
        self.crawler = crawler
        self.run = RunContext.of(crawler)
        self.settings = settings
        self.stats = crawler.stats
        self.clock = clock or (lambda: datetime.now(UTC))
        self.prompt = load_prompt(settings.prompt_path)
        self.media = media or MediaStore.from_settings(crawler.settings)
        self.local = LocalRunner()
        self.cache = EnrichCache(None, clock=self.clock, stats=self.stats)
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self.packing = PackSettings.from_settings(crawler.settings)
        self._pack_slots = asyncio.Semaphore(
            self.packing.max_notes * max(crawler.settings.getint("GEMINI_MAX_IN_FLIGHT"), 1)
        )
        self._packer: PackQueue | None = None
        self._window: RedisMinuteWindow | None = None
        self._active = 0  # notes inside process_item now
        self._finished = 0  # notes this pipeline has finished
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._unavailable: str | None = None
        self._deferred_until: set[datetime] = set()  # deferral times already logged
        self._db: Any = None
        self.claims = NoteClaims(None, "", 0.0)  # no database yet: nothing to coordinate
        self.stored_comments = StoredComments(None)
        self._stored_backlog = 0  # notes due in the store at open (a crawl of the site)

    @classmethod
    def from_crawler(cls, crawler: Any) -> EnrichmentPipeline:
        return cls(crawler, EnrichSettings.from_settings(crawler.settings))

    # -- lifecycle --

    async def open_spider(self) -> None:
        self.stats.set_value(f"enrich/backend/{self.settings.backend}", 1)
        if self.settings.backend is not EnrichBackend.OFF:
            self._db = await self._database()
            self.cache = EnrichCache(
                self._db,
                clock=self.clock,
                stats=self.stats,
                retries=self.crawler.settings.getint("MONGO_RETRY_TIMES"),
                backoff_s=self.crawler.settings.getfloat("MONGO_RETRY_BACKOFF"),
                backoff_max_s=self.crawler.settings.getfloat("MONGO_RETRY_BACKOFF_MAX"),
                journal=journal_beside(self.crawler.settings.get("MONGO_SPOOL_PATH")),
            )
            await self.cache.open()  # what an earlier run's outage journaled
            # Gemini notes are claimed before a request is spent on them (issue 18,
            # defect 6): two runs meeting on a note never both pay for it.
            owner = f"{crawl_run_id(self.crawler)}@{socket.gethostname()}:{os.getpid()}"
            gemini = self.settings.backend is EnrichBackend.GEMINI
            ttl = self.crawler.settings.getfloat("ENRICH_CLAIM_TTL")
            self.claims = NoteClaims(self._db if gemini else None, owner, ttl, stats=self.stats)
            self.stored_comments = StoredComments(self._db if gemini else None, stats=self.stats)
            self._stored_backlog = await self._count_stored_backlog()

    async def close_spider(self) -> None:
        await self.claims.close()  # the last batched releases
        await self.cache.close()  # the writes an outage held back
        if self._client is not None:
            self._copy_client_stats()
            await self._client.close()
            self._client = None
        if self._window is not None:
            await self._window.close()
            self._window = None

    async def _database(self) -> Any:
        try:
            return (await get_mongo(self.crawler)).db
        except Exception as exc:  # enrichment works without its cache; storage reports outages
            logger.warning("enrichment cache unavailable (MongoDB): %s", exc)
            return None

    async def _count_stored_backlog(self) -> int:
        """The stored notes due (the enrich spider's query, ``backlog_query``), counted
        once at open by a crawl of the site whose packing decision needs it (``auto``):
        the day's requests must cover them too. 0 in ``scrapy crawl enrich`` (its
        backlog is ``RunContext.backlog_due``) or without a database."""
        if (
            self._db is None
            or self.settings.backend is not EnrichBackend.GEMINI
            or self.packing.mode is not PackMode.AUTO
            or self.run.backlog_due is not None
        ):
            return 0
        query = backlog_query(self.clock(), include_local=False)
        try:
            return int(await self._db[NOTES].count_documents(query))
        except Exception as exc:  # storage reports outages; packing decides without it
            logger.warning("stored enrichment backlog not counted: %s", exc)
            return 0

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
                    ledger=MongoQuotaLedger(self._db) if self._db is not None else None,
                    window=self._minute_window(),
                    clock=lambda: self.clock().timestamp(),
                    stopping=self._stopping,
                )
                try:
                    await client.start()
                except Exception as exc:  # EnrichmentUnavailable, or models.list blew up
                    await client.close()
                    self._mark_unavailable(str(exc))
                    return None
                self._client = client
                self._packer = PackQueue(
                    client,
                    self.packing,
                    single=self._runner,
                    thinking=self.settings.thinking,
                    retries=max(self.settings.max_requests_per_note - 1, 1),
                )
            return self._client

    def _minute_window(self) -> RedisMinuteWindow | None:
        """With ``REDIS_URL`` set, the per-minute windows are shared through Redis."""
        url = self.crawler.settings.get("REDIS_URL")
        if not url:
            return None
        self._window = RedisMinuteWindow.from_url(url)
        return self._window

    def _runner(self) -> GeminiRunner:
        return GeminiRunner(
            self._client,
            self.prompt,
            max_per_request=self.settings.max_images_per_request,
            max_requests=self.settings.max_requests_per_note,
            thinking=self.settings.thinking,
        )

    async def _packs_now(self) -> bool:
        """Whether the next Gemini note goes through the pack queue (see ``should_pack``
        and ``_notes_due``)."""
        if self.settings.backend is not EnrichBackend.GEMINI or self.packing.mode is PackMode.NEVER:
            return False
        if self._unavailable is not None or await self._gemini() is None:
            return False
        return should_pack(self.packing.mode, self._client.remaining_today(), self._notes_due())

    def _notes_due(self) -> int:
        """The notes the day's requests must cover from now on.

        ``scrapy crawl enrich``: its backlog still to do (``RunContext.backlog_due``
        counted at start) or the notes in the pipeline now, whichever is more. A crawl
        of the site: the notes in the pipeline now, plus those the run still heads for
        (``RunContext.notes_target``: ``max_notes``, else the notes scheduled or listed
        so far, less the notes that reached this pipeline), plus the stored backlog
        counted at open. Without the last two a quota-bound crawl saw one or two notes
        due at a time and spent its day one note per request."""
        if self.run.backlog_due is not None:
            return max(self.run.backlog_due - self._finished, self._active)
        target = self.run.notes_target() if self.run.notes_target is not None else 0
        to_come = max(target - self._finished - self._active, 0)
        return self._active + to_come + self._stored_backlog

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

    @guard_item("enrichment")
    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, NoteItem):  # a profile (UserItem): nothing to enrich
            return item
        adapter = ItemAdapter(item)
        previous = _state_of(adapter.get("enrichment"))
        if self.settings.backend is EnrichBackend.OFF:
            if previous is None:
                adapter["enrichment"] = EnrichmentState(
                    status=EnrichmentStatus.SKIPPED,
                    reason="disabled",
                    updated_at=self.clock(),
                )
                self.stats.inc_value("enrich/skipped")
            return item
        self._active += 1
        try:
            packing = await self._packs_now()
            # Claimed before a slot is taken: the claim's round trip (shared with the
            # other notes arriving) overlaps the wait for a slot instead of holding one.
            async with self._claim(adapter, previous) as held:
                if held:
                    async with self._pack_slots if packing else self._semaphore:
                        state = await self._enrich(adapter, previous, packing)
                else:  # another run enriches it now (its result arrives through it)
                    state = self._held_elsewhere()
        finally:
            self._active -= 1
            self._finished += 1
        adapter["enrichment"] = state or previous
        self._count(adapter["enrichment"])
        if self._client is not None:
            self._copy_client_stats()
        return item

    def _claim(
        self, adapter: ItemAdapter, previous: EnrichmentState | None
    ) -> contextlib.AbstractAsyncContextManager[bool]:
        """The claim on this note while it is enriched. Held without asking: a backlog
        note the enrich spider claimed already (``RunContext.backlog_claimed``), and an unchanged
        note whose stored result is this prompt's (it is kept: no request is spent, so
        a re-crawl costs no claim writes)."""
        if adapter.get("from_backlog") and self.run.backlog_claimed:
            return contextlib.nullcontext(True)
        if (
            adapter.get("change") == "unchanged"
            and previous is not None
            and previous.status is EnrichmentStatus.DONE
            and not previous.stale
            and previous.prompt_version == self.prompt.version
        ):
            return contextlib.nullcontext(True)
        return self.claims.holding(str(adapter.get("note_id") or ""))

    def _held_elsewhere(self) -> EnrichmentState:
        """``pending`` (claimed_elsewhere), whatever the item carried: the lowest rank,
        so storage never puts it over the claim holder's result. Kept, the stored state
        the item was read with went over the holder's newer one of the same rank (the
        chaos run: an enrich run's ``failed`` replaced by the day-old ``deferred`` a
        crawl of the same note had read, the note left deferred)."""
        return EnrichmentState(
            status=EnrichmentStatus.PENDING, reason="claimed_elsewhere", updated_at=self.clock()
        )

    async def _enrich(
        self, adapter: ItemAdapter, previous: EnrichmentState | None, packing: bool = False
    ) -> EnrichmentState | None:
        """The new state, or None to keep the item's current one."""
        note, unreadable = await asyncio.to_thread(
            note_input, adapter, self.media, max_text_chars=self.settings.max_text_chars
        )
        if note.text_cut:
            self.stats.inc_value("enrich/text_cut")
        for reason in unreadable:
            self.stats.inc_value("enrich/image_unreadable")
            self.stats.inc_value(f"enrich/image_unreadable/{reason}")
        gemini = self.settings.backend is EnrichBackend.GEMINI
        family = GEMINI_FAMILY if gemini else LOCAL_FAMILY
        version = self.prompt.version if gemini else LOCAL_VERSION
        digest = model_input_hash(note)
        if previous is not None and self._keep_previous(previous, digest, family):
            self.stats.inc_value("enrich/cache_hits")
            # Storage flags ``stale`` from URL-level identities; the key just matched the
            # exact bytes and text, so the flag no longer holds (and would keep the note
            # in the `enrich` backlog forever).
            return previous.fresh() if previous.stale else None
        if gemini and not note.empty and adapter.get("comments") is None:
            # A request will go out unless the cache has this content: with the note's
            # stored comments, keyed as if its thread had been read.
            lines = await self.stored_comments.top(str(adapter.get("note_id") or ""))
            if lines or note.comments_mark:
                note = with_stored(note, lines)
                digest = model_input_hash(note)
        same_content = previous is not None and _digest_of(previous) == digest
        attempts = previous.attempts + 1 if previous is not None and same_content else 1
        attempt = _Attempt(version, make_cache_key(version, family, digest), attempts)
        if note.empty:
            return self._state(attempt, EnrichmentStatus.SKIPPED, reason="empty")
        try:
            cached = await self.cache.get(attempt.cache_key)
        except CacheUnavailable as exc:
            if gemini:  # maybe paid for already: not paid again on a guess (see the cache)
                self.stats.inc_value("enrich/deferred_cache_unavailable")
                return self._unspent(attempt, clip_reason(f"{CACHE_UNAVAILABLE}: {exc}"))
            cached = None  # the local backend costs nothing: it runs
        if cached is not None:
            self.stats.inc_value("enrich/cache_hits")
            return self._state(
                attempt,
                EnrichmentStatus.DONE,
                backend=cached.get("backend", family),
                model=cached.get("model"),
                key_fp=cached.get("key_fp"),
                result=cached["result"],
            )
        if not gemini:
            return await self._run_local(note, attempt)
        client = await self._gemini() if self._unavailable is None else None
        if client is None:
            return self._state(
                attempt, EnrichmentStatus.DEFERRED, backend=Backend.GEMINI, reason=self._unavailable
            )
        key = str(adapter.get("note_id") or "")
        return await self._run_gemini(client, note, attempt, key if packing else None)

    def _stopping(self) -> bool:
        """Whether the run was asked to stop (SIGINT/SIGTERM: Scrapy's graceful shutdown
        stopped the engine) while notes are still in the pipeline. The process may end
        at any moment now (a second signal, a supervisor's SIGKILL after its grace
        period), and an answer that arrives after it is paid for and lost: the next run
        pays again (issue 18, the chaos run's forced stop). So no new request is
        started: the Gemini client asks this right before each send and raises
        ``SendingStopped``; the note is deferred and the next run or ``scrapy crawl
        enrich`` takes it. Requests already sent finish (their answers are stored)."""
        try:
            engine = self.crawler.engine
        except RuntimeError:  # no crawl started: the pipeline is driven by hand
            return False
        return engine is not None and not engine.running

    def _keep_previous(self, previous: EnrichmentState, digest: str, family: str) -> bool:
        """Whether the item already carries a good enough result for this exact content.

        A Gemini result is kept unless the prompt version changed (and always under the
        local backend: it is the better result). A local result is kept under the local
        backend, and under Gemini too unless this run upgrades local results
        (``scrapy crawl enrich -a include_local=1`` sets ``RunContext.upgrade_local``).
        """
        if previous.status is not EnrichmentStatus.DONE:
            return False
        parsed = split_cache_key(previous.cache_key)
        if parsed is None or parsed[2] != digest:
            return False
        version, previous_family, _ = parsed
        if previous_family == GEMINI_FAMILY:
            return family == LOCAL_FAMILY or version == self.prompt.version
        if family == LOCAL_FAMILY:
            return version == LOCAL_VERSION
        return not self.run.upgrade_local

    async def _run_local(self, note: NoteInput, attempt: _Attempt) -> EnrichmentState:
        try:
            result = await self.local.enrich(note)
        except EnrichFailure as exc:
            return self._failed(exc, attempt, backend=Backend.LOCAL)
        payload = result.model_dump()
        await self.cache.put(
            attempt.cache_key, {"backend": "local", "model": LOCAL_MODEL, "result": payload}
        )
        return self._state(
            attempt, EnrichmentStatus.DONE, backend=Backend.LOCAL, model=LOCAL_MODEL, result=payload
        )

    async def _run_gemini(
        self, client: Any, note: NoteInput, attempt: _Attempt, pack_key: str | None = None
    ) -> EnrichmentState:
        """One note through the one-note runner, or through the pack queue (``pack_key``)."""
        conv = Conversation()
        common: dict[str, Any] = {"backend": Backend.GEMINI, "usage": conv.usage}
        try:
            if pack_key is not None and self._packer is not None:
                result = await self._packer.enrich(pack_key, note, conv)
            else:
                result = await self._runner().enrich(note, conv)
        except SendingStopped:  # the run was asked to stop while the note waited to be sent
            self.stats.inc_value("enrich/deferred_stopping")
            if not conv.usage.requests:
                return self._unspent(attempt, STOPPING_REASON)
            return self._state(attempt, EnrichmentStatus.DEFERRED, reason=STOPPING_REASON, **common)
        except QuotaDeferred as exc:
            self._log_deferral(exc)
            return self._state(
                attempt,
                EnrichmentStatus.DEFERRED,
                reason=clip_reason(str(exc)),
                next_attempt_at=exc.next_attempt_at,
                **common,
            )
        except EnrichmentUnavailable as exc:
            self._mark_unavailable(str(exc))
            return self._state(
                attempt, EnrichmentStatus.DEFERRED, reason=self._unavailable, **common
            )
        except EnrichFailure as exc:
            return self._failed(exc, attempt, model=conv.model, key_fp=conv.key_fp, **common)
        except Exception as exc:  # transport errors the client left unclassified
            logger.warning("Gemini enrichment failed: %s: %s", type(exc).__name__, exc)
            failure = EnrichFailure("error", f"{type(exc).__name__}: {exc}")
            return self._failed(failure, attempt, **common)
        if conv.dropped:
            self.stats.inc_value("enrich/images_dropped", len(conv.dropped))
        payload = result.model_dump()
        await self.cache.put(
            attempt.cache_key,
            {"backend": "gemini", "model": conv.model, "key_fp": conv.key_fp, "result": payload},
        )
        return self._state(
            attempt,
            EnrichmentStatus.DONE,
            model=conv.model,
            key_fp=conv.key_fp,
            result=payload,
            **common,
        )

    # -- states --

    def _state(self, attempt: _Attempt, status: EnrichmentStatus, **fields: Any) -> EnrichmentState:
        usage = fields.pop("usage", None) or EnrichmentUsage()
        updated_at = fields.pop("updated_at", None) or self.clock()
        return EnrichmentState(
            status=status,
            prompt_version=attempt.prompt_version,
            cache_key=attempt.cache_key,
            attempts=attempt.attempts,
            updated_at=updated_at,
            usage=usage,
            **fields,
        )

    def _unspent(self, attempt: _Attempt, reason: str) -> EnrichmentState:
        """A Gemini note deferred before any request was sent: due again at once, no
        attempt spent."""
        unspent = dataclasses.replace(attempt, attempts=attempt.attempts - 1)
        return self._state(
            unspent, EnrichmentStatus.DEFERRED, backend=Backend.GEMINI, reason=reason
        )

    def _failed(self, failure: EnrichFailure, attempt: _Attempt, **fields: Any) -> EnrichmentState:
        """A failed state; retryable kinds get a next attempt until attempts run out."""
        now = self.clock()
        retry = failure.retryable and attempt.attempts < self.settings.max_attempts
        self.stats.inc_value(f"enrich/failed/{failure.kind}")
        return self._state(
            attempt,
            EnrichmentStatus.FAILED,
            reason=failure.reason,
            updated_at=now,
            next_attempt_at=now + self.settings.retry_after if retry else None,
            **fields,
        )

    # -- stats --

    def _count(self, state: EnrichmentState | None) -> None:
        if state is not None and state.status in (
            EnrichmentStatus.DONE,
            EnrichmentStatus.DEFERRED,
            EnrichmentStatus.SKIPPED,
        ):
            self.stats.inc_value(f"enrich/{state.status}")

    def _copy_client_stats(self) -> None:
        """Mirror the client's counters into Scrapy stats (absolute values, not deltas)."""
        for name, value in client_stats(self._client.stats).items():
            self.stats.set_value(name, value)
        if self._packer is not None:
            for name, value in self._packer.stats.counts.items():
                self.stats.set_value(f"enrich/pack/{name}", value)


def _state_of(value: Any) -> EnrichmentState | None:
    """The item's enrichment as a state (a stored-document dict is converted)."""
    if value is None or isinstance(value, EnrichmentState):
        return value
    return EnrichmentState.from_document(value)


def _digest_of(state: EnrichmentState) -> str | None:
    parsed = split_cache_key(state.cache_key)
    return parsed[2] if parsed is not None else None
