"""EnrichCache over the embedded MongoDB-wire server: entries by key, off after an outage."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import AsyncMongoClient
from scrapy.statscollectors import MemoryStatsCollector

from crawler.core.names import ENRICH_CACHE
from pipelines.enrichment import EnrichCache
from tests.media.harness import project_crawler

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


async def test_an_outage_switches_the_cache_off_for_the_run(unused_tcp_port) -> None:
    client = AsyncMongoClient(
        f"mongodb://127.0.0.1:{unused_tcp_port}/", serverSelectionTimeoutMS=200
    )
    counters = stats()
    try:
        cache = EnrichCache(client["x"], clock=lambda: NOW, stats=counters)
        assert await cache.get("k") is None
        assert cache.enabled is False
        await cache.put("k", {"result": {}})  # no second wait on a dead server
        assert await cache.get("k") is None
    finally:
        await client.close()
    assert counters.get_value("enrich/cache_errors") == 1


async def test_no_database_means_no_cache() -> None:
    cache = EnrichCache(None, clock=lambda: NOW, stats=stats())
    assert cache.enabled is False and await cache.get("k") is None
