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
  only then is it a miss. An entry whose write is still pending answers it at once.
- a write that fails is kept (at most ``max_pending`` entries, the oldest dropped and
  counted ``enrich/cache_dropped``) and retried in the background with the same
  backoff until the database answers; :meth:`close` tries the last ones (the end of a
  run) and counts what is still lost.

Errors are counted (``enrich/cache_errors``), one warning per outage, and a success
ends the outage (logged at INFO).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import WriteConcern
from pymongo.errors import PyMongoError

from crawler.core.names import ENRICH_CACHE
from crawler.core.timeutil import Clock

logger = logging.getLogger(__name__)

JOURNALED = WriteConcern(w=1, j=True)


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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.stats = stats
        self.retries = max(retries, 0)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_pending = max(max_pending, 1)
        self._sleep = sleep
        self._pending: OrderedDict[str, dict[str, Any]] = OrderedDict()  # writes not landed
        self._flushing: asyncio.Task[None] | None = None
        self._writing = False  # the background retry is writing now
        self._closing = False
        self._failing = False

    @property
    def enabled(self) -> bool:
        """Whether there is a database to cache in."""
        return self.db is not None

    @property
    def pending(self) -> int:
        """How many written entries have not reached the database yet."""
        return len(self._pending)

    async def get(self, key: str) -> dict[str, Any] | None:
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
                    return None
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
        self._ok()

    async def close(self) -> None:
        """Stop the background retries and try the pending writes once more (with the
        retry policy); what still fails is counted ``enrich/cache_lost``."""
        if self._flushing is not None:
            self._closing = True
            if not self._writing:  # a write is never cancelled half-way: it ends first
                self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
            self._flushing = None
        if not self._pending:
            return
        for delay in self._delays():
            if await self._flush_once() or delay is None:
                break
            await self._sleep(delay)
        if self._pending:
            self._inc("enrich/cache_lost", len(self._pending))
            logger.warning(
                "enrichment cache: %d entr(ies) could not be written before the end of the run",
                len(self._pending),
            )
            self._pending.clear()

    # -- internals --

    def _delays(self) -> list[float | None]:
        """The pause after each failed attempt; None after the last one."""
        delays: list[float | None] = [
            min(self.backoff_s * 2**i, self.backoff_max_s) for i in range(self.retries)
        ]
        return [*delays, None]

    async def _write(self, key: str, document: dict[str, Any]) -> None:
        await (
            self.db[ENRICH_CACHE]
            .with_options(write_concern=JOURNALED)
            .replace_one({"_id": key}, document, upsert=True)
        )

    def _keep(self, key: str, document: dict[str, Any]) -> None:
        self._pending[key] = document
        self._pending.move_to_end(key)
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
            self._inc("enrich/cache_dropped")
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        """Retry the pending writes with backoff until they all landed."""
        delay = self.backoff_s
        while self._pending and not self._closing:
            await self._sleep(delay)
            self._writing = True
            try:
                if await self._flush_once():
                    return
            finally:
                self._writing = False
            delay = min(delay * 2, self.backoff_max_s)

    async def _flush_once(self) -> bool:
        """Write every pending entry; True when none is left."""
        for key, document in list(self._pending.items()):
            try:
                await self._write(key, document)
            except PyMongoError as exc:
                self._error(exc)
                return False
            if self._pending.get(key) is document:
                del self._pending[key]
            self._inc("enrich/cache_replayed")
        self._ok()
        return not self._pending

    def _inc(self, key: str, count: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(key, count)

    def _error(self, exc: PyMongoError) -> None:
        self._inc("enrich/cache_errors")
        if not self._failing:
            self._failing = True
            logger.warning(
                "enrichment cache unavailable (MongoDB error %s): lookups retried, "
                "writes kept and retried",
                type(exc).__name__,
            )

    def _ok(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("enrichment cache available again")
