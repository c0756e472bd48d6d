"""The ``enrich_cache`` collection: results by cache key, so unchanged content costs no
request, whichever note carries it.

An entry is ``{_id: <cache key>, backend, model, key_fp, result, created_at}``. The
cache is an optimisation: a MongoDB error switches it off for the rest of the run (one
warning, stat ``enrich/cache_errors``) instead of making every note wait on it;
storage has its own outage handling.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import PyMongoError

from crawler.core.names import ENRICH_CACHE
from crawler.core.timeutil import Clock

logger = logging.getLogger(__name__)


class EnrichCache:
    def __init__(self, db: Any, *, clock: Clock, stats: Any) -> None:
        self.db = db
        self.clock = clock
        self.stats = stats
        self.enabled = db is not None

    async def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        try:
            return await self.db[ENRICH_CACHE].find_one({"_id": key})
        except PyMongoError as exc:
            self._down(exc)
            return None

    async def put(self, key: str, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            await self.db[ENRICH_CACHE].replace_one(
                {"_id": key}, {**entry, "created_at": self.clock()}, upsert=True
            )
        except PyMongoError as exc:
            self._down(exc)

    def _down(self, exc: PyMongoError) -> None:
        self.enabled = False
        self.stats.inc_value("enrich/cache_errors")
        logger.warning(
            "enrichment cache disabled for this run: MongoDB error %s", type(exc).__name__
        )
