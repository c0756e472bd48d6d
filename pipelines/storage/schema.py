"""The collections storage writes and their indexes, created once per writer (idempotent)."""

from __future__ import annotations

import contextlib
import logging

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, OperationFailure

from crawler.core.names import COMMENTS, NOTE_STATS, NOTES, USER_STATS, USERS

logger = logging.getLogger(__name__)

NOTE_INDEXES: list[tuple[str, list[tuple[str, int]]]] = [
    ("user_id", [("user.user_id", 1)]),
    ("tags", [("tags", 1)]),
    ("published_at", [("published_at", -1)]),
    ("enrichment_backlog", [("enrichment.status", 1), ("enrichment.next_attempt_at", 1)]),
    ("last_crawled_at", [("last_crawled_at", -1)]),
    ("liked", [("interact.liked", -1)]),  # "top notes by likes"
    ("crawl_run_id", [("crawl_run_id", 1)]),  # a run's notes (reports, summaries)
]
NOTE_STATS_INDEX = ("note_id_crawled_at", [("note_id", 1), ("crawled_at", 1)])
# A run's rows: the report of a past run reads them (crawler/report/_data.py).
NOTE_STATS_RUN_INDEX = ("crawl_run_id", [("crawl_run_id", 1)])
COMMENT_INDEXES: list[tuple[str, list[tuple[str, int]]]] = [
    ("note_id_created_at", [("note_id", 1), ("created_at", 1)]),
    ("root_comment_id", [("root_comment_id", 1)]),
    ("user_id", [("user.user_id", 1)]),
]
USER_INDEXES: list[tuple[str, list[tuple[str, int]]]] = [
    ("fans", [("fans", -1)]),
    ("last_crawled_at", [("last_crawled_at", -1)]),
]
USER_STATS_INDEX = ("user_id_crawled_at", [("user_id", 1), ("crawled_at", 1)])


# Time-series options of the observation collections: one row per thing per crawl.
NOTE_STATS_TIMESERIES = {"timeField": "crawled_at", "metaField": "note_id", "granularity": "hours"}
USER_STATS_TIMESERIES = {"timeField": "crawled_at", "metaField": "user_id", "granularity": "hours"}


async def ensure_schema(db: AsyncDatabase) -> str:
    """Create ``note_stats``, ``user_stats`` and every index (idempotent). Returns the
    kind of ``note_stats``: ``timeseries`` where the server supports it, else ``plain``."""
    kind = await ensure_timeseries(db, NOTE_STATS, NOTE_STATS_TIMESERIES)
    await ensure_timeseries(db, USER_STATS, USER_STATS_TIMESERIES)
    for name, keys in NOTE_INDEXES:
        await db[NOTES].create_index(keys, name=name)
    for name, keys in (NOTE_STATS_INDEX, NOTE_STATS_RUN_INDEX):
        await db[NOTE_STATS].create_index(keys, name=name)
    for name, keys in COMMENT_INDEXES:
        await db[COMMENTS].create_index(keys, name=name)
    for name, keys in USER_INDEXES:
        await db[USERS].create_index(keys, name=name)
    await db[USER_STATS].create_index(USER_STATS_INDEX[1], name=USER_STATS_INDEX[0])
    return kind


async def ensure_timeseries(db: AsyncDatabase, name: str, options: dict[str, str]) -> str:
    """Create ``name`` as a time-series collection with ``options`` unless it exists;
    a plain collection where the server has no time series. An existing collection is
    kept as it is (a plain one stays plain: MongoDB cannot convert it). Returns its kind:
    ``timeseries`` or ``plain``."""
    if not await db.list_collection_names(filter={"name": name}):
        try:
            await db.create_collection(name, timeseries=options)
        except CollectionInvalid:
            pass  # created concurrently
        except OperationFailure as exc:
            logger.info("time-series collections unsupported (%s): plain %s", exc, name)
            with contextlib.suppress(CollectionInvalid):
                await db.create_collection(name)
    return await collection_kind(db, name)


async def collection_kind(db: AsyncDatabase, name: str) -> str:
    """``timeseries`` or ``plain`` (also for a collection that does not exist)."""
    async for info in await db.list_collections(filter={"name": name}):
        if info.get("type") == "timeseries" or (info.get("options") or {}).get("timeseries"):
            return "timeseries"
    return "plain"
