"""EnrichCache over the embedded MongoDB-wire server: entries by key, paused by an outage."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import AsyncMongoClient
from scrapy.statscollectors import MemoryStatsCollector

from crawler.core.names import ENRICH_CACHE
from pipelines.enrichment import EnrichCache
from tests.factories import project_crawler

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def stats() -> MemoryStatsCollector:
    return MemoryStatsCollector(project_crawler({}))


async def test_put_then_get_by_key(mongo_uri, mongo_db_name, mongo_sync) -> None:
    client = AsyncMongoClient(mongo_uri)
    try:
        cache = EnrichCache(client[mongo_db_name], clock=lambda: NOW, stats=stats())
        assert await cache.get("v/gemini/abc") is None
        await cache.put("v/gemini/abc", {"backend": "gemini", "result": {"summary": "s"}})
        await cache.put("v/gemini/abc", {"backend": "gemini", "result": {"summary": "t"}})
        entry = await cache.get("v/gemini/abc")
    finally:
        await client.close()
    assert entry["result"] == {"summary": "t"} and entry["backend"] == "gemini"
    stored = list(mongo_sync[ENRICH_CACHE].find())
    assert len(stored) == 1 and stored[0]["created_at"].replace(tzinfo=UTC) == NOW


async def test_an_outage_pauses_the_cache_then_it_is_tried_again(
    unused_tcp_port, mongo_uri, mongo_db_name
) -> None:
    """Issue 18, defect 6: one MongoDB error no longer switches the cache off for the
    rest of the run (a later run would then pay for content it has a result for)."""
    dead = AsyncMongoClient(f"mongodb://127.0.0.1:{unused_tcp_port}/", serverSelectionTimeoutMS=200)
    live = AsyncMongoClient(mongo_uri)
    counters = stats()
    now = [0.0]
    try:
        cache = EnrichCache(dead["x"], clock=lambda: NOW, stats=counters, retry_after_s=30,
                            monotonic=lambda: now[0])  # fmt: skip
        assert await cache.get("k") is None
        assert cache.enabled is False  # pausing: no second wait on a dead server
        await cache.put("k", {"result": {}})
        assert counters.get_value("enrich/cache_errors") == 1
        now[0] = 31.0  # the pause is over; the database is back
        cache.db = live[mongo_db_name]
        assert cache.enabled is True
        await cache.put("k", {"backend": "gemini", "result": {"summary": "s"}})
        assert (await cache.get("k"))["result"] == {"summary": "s"}
    finally:
        await dead.close()
        await live.close()
    assert counters.get_value("enrich/cache_errors") == 1


async def test_no_database_means_no_cache() -> None:
    cache = EnrichCache(None, clock=lambda: NOW, stats=stats())
    assert cache.enabled is False and await cache.get("k") is None
