"""The ``enrich_cache`` collection: results by cache key, so unchanged content costs no
request, whichever note carries it.

An entry is ``{_id: <cache key>, backend, model, key_fp, result, created_at}``, written
with a journaled write concern (``j=True``): the entry is what a second run (or
worker) finds instead of paying for the note again, so it must survive a crash of the
database right after the answer was paid for.

The cache is an optimisation and stays one through outages: a MongoDB error is
counted (``enrich/cache_errors``, one warning per outage) and the cache is skipped for
``retry_after_s`` seconds instead of making every note wait on a dead server; then it
is tried again, and a success ends the outage. It is never switched off for the rest
of a run: after one error a later crawl or enrich run meeting the same content would
otherwise pay for it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
        retry_after_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.clock = clock
        self.stats = stats
        self.retry_after_s = retry_after_s
        self._monotonic = monotonic
        self._paused_until = 0.0
        self._failing = False

    @property
    def enabled(self) -> bool:
        """Whether the cache is tried now (a database, and not pausing after an error)."""
        return self.db is not None and self._monotonic() >= self._paused_until

    async def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        try:
            entry = await self.db[ENRICH_CACHE].find_one({"_id": key})
        except PyMongoError as exc:
            self._error(exc)
            return None
        self._ok()
        return entry

    async def put(self, key: str, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            await (
                self.db[ENRICH_CACHE]
                .with_options(write_concern=JOURNALED)
                .replace_one({"_id": key}, {**entry, "created_at": self.clock()}, upsert=True)
            )
        except PyMongoError as exc:
            self._error(exc)
            return
        self._ok()

    def _error(self, exc: PyMongoError) -> None:
        self.stats.inc_value("enrich/cache_errors")
        self._paused_until = self._monotonic() + self.retry_after_s
        if not self._failing:
            self._failing = True
            logger.warning(
                "enrichment cache unavailable (MongoDB error %s): skipped for %.0f s, "
                "then tried again",
                type(exc).__name__,
                self.retry_after_s,
            )

    def _ok(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("enrichment cache available again")
