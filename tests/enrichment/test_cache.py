"""EnrichCache over the embedded MongoDB-wire server: entries by key, through an outage."""

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


def dead_client(port: int) -> AsyncMongoClient:
    return AsyncMongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=200)


async def test_a_lookup_in_an_outage_is_retried_until_the_database_is_back(
    unused_tcp_port, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    """Issue 18 (chaos run): a 5 s outage made the cache skip lookups for 20-30 s (a
    fixed pause after an error), so notes were paid for again. A lookup now retries
    with the storage's backoff and finds the entry once the database answers."""
    mongo_sync[ENRICH_CACHE].insert_one({"_id": "k", "result": {"summary": "s"}})
    dead, live = dead_client(unused_tcp_port), AsyncMongoClient(mongo_uri)
    counters, delays = stats(), []
    cache = EnrichCache(dead["x"], clock=lambda: NOW, stats=counters, retries=3, backoff_s=0.5)

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 2:  # the database is back during the second pause
            cache.db = live[mongo_db_name]

    cache._sleep = sleep
    try:
        entry = await cache.get("k")
    finally:
        await dead.close()
        await live.close()
    assert entry is not None and entry["result"] == {"summary": "s"}
    assert delays == [0.5, 1.0] and counters.get_value("enrich/cache_errors") == 2


async def test_a_write_in_an_outage_is_kept_and_lands_later(
    unused_tcp_port, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    """A paid-for answer whose cache write failed is not lost: it answers lookups of
    the same key at once, and is written when the database is back (at the latest
    at close)."""
    dead, live = dead_client(unused_tcp_port), AsyncMongoClient(mongo_uri)
    counters = stats()
    cache = EnrichCache(dead["x"], clock=lambda: NOW, stats=counters, retries=1, backoff_s=0.05)
    try:
        await cache.put("k", {"backend": "gemini", "result": {"summary": "s"}})
        assert cache.pending == 1
        assert (await cache.get("k"))["result"] == {"summary": "s"}  # no wait, no request
        cache.db = live[mongo_db_name]
        await cache.close()
    finally:
        await dead.close()
        await live.close()
    stored = mongo_sync[ENRICH_CACHE].find_one({"_id": "k"})
    assert stored["result"] == {"summary": "s"} and cache.pending == 0
    assert counters.get_value("enrich/cache_lost") is None


async def test_writes_still_failing_at_close_are_counted_lost(unused_tcp_port) -> None:
    dead = dead_client(unused_tcp_port)
    counters = stats()
    cache = EnrichCache(dead["x"], clock=lambda: NOW, stats=counters, retries=1, backoff_s=0.01)
    try:
        await cache.put("k", {"result": {}})
        assert await cache.get("other") is None  # retried, then a miss
        await cache.close()
    finally:
        await dead.close()
    assert counters.get_value("enrich/cache_lost") == 1 and cache.pending == 0


async def test_no_database_means_no_cache() -> None:
    cache = EnrichCache(None, clock=lambda: NOW, stats=stats())
    assert cache.enabled is False and await cache.get("k") is None
