"""The ``enrich_cache`` collection: results by cache key, so unchanged content costs no
request, whichever note carries it.

An entry is ``{_id: <cache key>, backend, model, key_fp, result, created_at}``, written
with a journaled write concern (``j=True``): the entry is what a second run (or
worker) finds instead of paying for the note again, so it must survive a crash of the
database right after the answer was paid for.

The cache rides out a database outage instead of being skipped for a fixed pause
(issue 18: a 5 s outage used to cost 20-30 s of skipped lookups and lost writes, so
notes were paid for again):

- a lookup that fails is retried with the storage's retry policy (``retries`` after
  ``backoff_s``, doubled each time, capped at ``backoff_max_s``: ``MONGO_RETRY_*``);
  then it raises :class:`CacheUnavailable`, never a miss: nobody can tell whether the
  answer is there, and the caller must not pay for it again on a guess (the chaos run
  paid again for notes enriched runs before when a MongoDB restart outlasted the
  retries). An entry whose write is still pending answers it at once.
- a write that fails is journaled (issue 18, defect 6): appended, fsync'd, to the
  ``journal`` (a :class:`~pipelines.storage.spool.Spool`, ``enrich_cache.jsonl`` in
  the storage spool's directory: :func:`journal_beside`) and kept in memory for
  lookups (at most ``max_pending`` entries, the oldest forgotten). The journal is
  written to the database in the background with the same backoff until it answers,
  at :meth:`close`, and at the next :meth:`open` of any run: a kill -9 or a forced stop
  right after a failed write no longer loses an answer that was paid for. A journal
  record is written with ``$setOnInsert``: an older answer never replaces a newer
  entry. Without a journal (or when appending to it fails) the entry is kept in
  memory only and counted ``enrich/cache_lost`` if it still cannot be written at
  close.

Counters: ``enrich/cache_errors`` (database errors), ``enrich/cache_journaled``
(failed writes appended to the journal), ``enrich/cache_journal_loaded`` (records an
earlier run left, read at open), ``enrich/cache_replayed`` (kept writes that landed
later), ``enrich/cache_journal_left`` (still only in the journal at close: the next
run writes them), ``enrich/cache_journal_errors``, ``enrich/cache_dropped`` and
``enrich/cache_lost`` (entries only memory held, forgotten or not written at close).
One warning per outage; a success ends the outage (logged at INFO).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pymongo import WriteConcern
from pymongo.errors import PyMongoError

from crawler.core.names import ENRICH_CACHE
from crawler.core.timeutil import Clock
from pipelines.storage.spool import ClaimedBatch, Spool

logger = logging.getLogger(__name__)

JOURNALED = WriteConcern(w=1, j=True)
JOURNAL_NAME = "enrich_cache.jsonl"


class CacheUnavailable(Exception):
    """A lookup the database did not answer, retries included (the message names the
    error): the entry may well be there."""


def journal_beside(spool_path: str | Path) -> Spool:
    """The cache's journal: :data:`JOURNAL_NAME` in the directory of the storage spool
    (``MONGO_SPOOL_PATH``), where a run already keeps what MongoDB could not take."""
    return Spool(Path(spool_path).with_name(JOURNAL_NAME))


def journal_record_problem(record: Mapping[str, Any]) -> str | None:
    """Why a decoded journal record can never be written (None: it is fine)."""
    if not isinstance(record.get("key"), str) or not record["key"]:
        return "no_key"
    entry = record.get("entry")
    if not isinstance(entry, dict) or not isinstance(entry.get("result"), dict):
        return "no_result"
    return None


class EnrichCache:
    def __init__(
        self,
        db: Any,
        *,
        clock: Clock,
        stats: Any,
        retries: int = 3,
        backoff_s: float = 0.5,
        backoff_max_s: float = 8.0,
        max_pending: int = 10_000,
        journal: Spool | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.stats = stats
        self.retries = max(retries, 0)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_pending = max(max_pending, 1)
        self.journal = journal
        self._sleep = sleep
        self._pending: OrderedDict[str, dict[str, Any]] = OrderedDict()  # writes not landed
        self._unjournaled: set[str] = set()  # of those, the ones only memory holds
        self._flushing: asyncio.Task[None] | None = None
        self._writing = False  # the background retry is writing now
        self._closing = False
        self._failing = False
        self._journal_failing = False

    @property
    def enabled(self) -> bool:
        """Whether there is a database to cache in."""
        return self.db is not None

    @property
    def pending(self) -> int:
        """How many written entries have not reached the database yet (known to memory)."""
        return len(self._pending)

    async def open(self) -> None:
        """Write what earlier runs journaled (their outage kept it from the database);
        while the database does not answer, those entries answer lookups from memory
        and are retried in the background."""
        if not self.enabled or self.journal is None or not self.journal.pending():
            return
        batch = self._claim_journal()
        for record in batch.records:
            if record["key"] not in self._pending:
                self._remember(record["key"], record["entry"])
        if batch.records:
            self._inc("enrich/cache_journal_loaded", len(batch.records))
            logger.info(
                "enrichment cache: %d entr(ies) an earlier run journaled (%s), written now",
                len(batch.records),
                self.journal.path,
            )
        if not await self._flush_once():
            self._start_flushing()

    async def get(self, key: str) -> dict[str, Any] | None:
        """The entry of ``key``, None when the database has none (or there is no
        database); :class:`CacheUnavailable` when it did not answer."""
        if not self.enabled:
            return None
        if key in self._pending:
            return dict(self._pending[key])
        for delay in self._delays():
            try:
                entry = await self.db[ENRICH_CACHE].find_one({"_id": key})
            except PyMongoError as exc:
                self._error(exc)
                if delay is None:
                    raise CacheUnavailable(f"MongoDB error {type(exc).__name__}") from None
                await self._sleep(delay)
                if key in self._pending:  # written meanwhile by another note
                    return dict(self._pending[key])
                continue
            self._ok()
            return entry
        return None

    async def put(self, key: str, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        document = {**entry, "created_at": self.clock()}
        try:
            await self._write(key, document)
        except PyMongoError as exc:
            self._error(exc)
            self._keep(key, document)
            return
        self._pending.pop(key, None)
        self._unjournaled.discard(key)
        self._ok()

    async def close(self) -> None:
        """Stop the background retries and try what waits once more (with the retry
        policy); what is still only in the journal is left there for the next run
        (``enrich/cache_journal_left``), what only memory held is counted
        ``enrich/cache_lost``."""
        if self._flushing is not None:
            self._closing = True
            if not self._writing:  # a write is never cancelled half-way: it ends first
                self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
            self._flushing = None
        if not self._waiting():
            return
        for delay in self._delays():
            if await self._flush_once() or delay is None:
                break
            await self._sleep(delay)
        lost, left = len(self._unjournaled), len(self._pending) - len(self._unjournaled)
        if left:
            self._inc("enrich/cache_journal_left", left)
            logger.warning(
                "enrichment cache: %d entr(ies) not written before the end of the run stay "
                "in %s; the next run writes them",
                left,
                self.journal.path if self.journal is not None else "the journal",
            )
        if lost:
            self._inc("enrich/cache_lost", lost)
            logger.warning(
                "enrichment cache: %d entr(ies) could not be written before the end of the run",
                lost,
            )
        self._pending.clear()
        self._unjournaled.clear()

    # -- internals --

    def _delays(self) -> list[float | None]:
        """The pause after each failed attempt; None after the last one."""
        delays: list[float | None] = [
            min(self.backoff_s * 2**i, self.backoff_max_s) for i in range(self.retries)
        ]
        return [*delays, None]

    async def _write(self, key: str, document: dict[str, Any], *, keep_newer: bool = False) -> None:
        """Upsert ``document`` under ``key``; ``keep_newer``: only where no entry exists
        (a kept write retried later must not replace an answer written since)."""
        collection = self.db[ENRICH_CACHE].with_options(write_concern=JOURNALED)
        if keep_newer:
            await collection.update_one({"_id": key}, {"$setOnInsert": document}, upsert=True)
        else:
            await collection.replace_one({"_id": key}, document, upsert=True)

    def _remember(self, key: str, document: dict[str, Any]) -> None:
        """Keep an entry for lookups (bounded: the oldest is forgotten)."""
        self._pending[key] = document
        self._pending.move_to_end(key)
        while len(self._pending) > self.max_pending:
            oldest, _ = self._pending.popitem(last=False)
            if oldest in self._unjournaled:  # the journal does not hold it: lost
                self._unjournaled.discard(oldest)
                self._inc("enrich/cache_dropped")

    def _keep(self, key: str, document: dict[str, Any]) -> None:
        """A failed write: journaled (else held in memory only), retried later."""
        if not self._append_journal(key, document):
            self._unjournaled.add(key)
        self._remember(key, document)
        self._start_flushing()

    def _append_journal(self, key: str, document: dict[str, Any]) -> bool:
        if self.journal is None:
            return False
        try:
            self.journal.append([{"key": key, "entry": document}])
        except OSError as exc:
            self._inc("enrich/cache_journal_errors")
            if not self._journal_failing:
                self._journal_failing = True
                logger.warning(
                    "enrichment cache journal %s not writable (%s): failed writes kept in "
                    "memory only",
                    self.journal.path,
                    exc.strerror or type(exc).__name__,
                )
            return False
        self._journal_failing = False
        self._inc("enrich/cache_journaled")
        return True

    def _claim_journal(self) -> ClaimedBatch:
        """Everything journaled so far (by this run, dead runs, or another run's outage)."""
        assert self.journal is not None
        return self.journal.claim(journal_record_problem)

    def _waiting(self) -> bool:
        """Whether kept writes wait: in memory or in the journal."""
        return bool(self._pending) or (self.journal is not None and self.journal.pending())

    def _start_flushing(self) -> None:
        if self._closing:
            return
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        """Retry the kept writes with backoff until they all landed."""
        delay = self.backoff_s
        while self._waiting() and not self._closing:
            await self._sleep(delay)
            self._writing = True
            try:
                if await self._flush_once():
                    return
            finally:
                self._writing = False
            delay = min(delay * 2, self.backoff_max_s)

    async def _flush_once(self) -> bool:
        """Write the journal's records, then the entries only memory holds (none
        replaces an entry written since); the journal's files are removed once all of
        theirs landed. True when nothing waits any more."""
        batch = self._claim_journal() if self.journal is not None else None
        try:
            for record in batch.records if batch is not None else []:
                await self._write(record["key"], record["entry"], keep_newer=True)
                self._landed(record["key"])
            for key in list(self._unjournaled):
                document = self._pending.get(key)
                if document is not None:
                    await self._write(key, document, keep_newer=True)
                self._landed(key)
        except PyMongoError as exc:
            self._error(exc)
            return False
        if batch is not None:
            batch.done()
        self._ok()
        return not self._waiting()

    def _landed(self, key: str) -> None:
        """An entry for ``key`` is in the database now (any of its versions will do:
        one key is one content)."""
        self._pending.pop(key, None)
        self._unjournaled.discard(key)
        self._inc("enrich/cache_replayed")

    def _inc(self, key: str, count: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(key, count)

    def _error(self, exc: PyMongoError) -> None:
        self._inc("enrich/cache_errors")
        if not self._failing:
            self._failing = True
            logger.warning(
                "enrichment cache unavailable (MongoDB error %s): lookups retried, "
                "writes journaled and retried",
                type(exc).__name__,
            )

    def _ok(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("enrichment cache available again")
