"""EnrichCache over the embedded MongoDB-wire server: entries by key, through an outage."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from scrapy.statscollectors import MemoryStatsCollector

from crawler.core.names import ENRICH_CACHE
from pipelines.enrichment import EnrichCache
from pipelines.enrichment.cache import JOURNAL_NAME, CacheUnavailable, journal_beside
from sandbox.harness import ROOT
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
        with pytest.raises(CacheUnavailable):  # retried, then no answer (not a miss)
            await cache.get("other")
        await cache.close()
    finally:
        await dead.close()
    assert counters.get_value("enrich/cache_lost") == 1 and cache.pending == 0


async def test_no_database_means_no_cache() -> None:
    cache = EnrichCache(None, clock=lambda: NOW, stats=stats())
    assert cache.enabled is False and await cache.get("k") is None


# --- the journal of failed writes (issue 18, defect 6) -------------------------------------

KILLED_AFTER_A_FAILED_WRITE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from pymongo import AsyncMongoClient
    from pipelines.enrichment.cache import EnrichCache, journal_beside

    async def main():
        dead = AsyncMongoClient(sys.argv[1], serverSelectionTimeoutMS=200)
        cache = EnrichCache(dead["x"], clock=lambda: datetime(2026, 11, 29, tzinfo=UTC),
                            stats=None, retries=0, journal=journal_beside(sys.argv[2]))
        await cache.put("v/gemini/paid", {"backend": "gemini", "result": {"summary": "s"}})
        os.kill(os.getpid(), signal.SIGKILL)  # no close: the run dies with the write kept

    asyncio.run(main())
    """
)


def test_the_journal_lies_beside_the_storage_spool(tmp_path: Path) -> None:
    journal = journal_beside(tmp_path / "spool" / "notes.jsonl")
    assert journal.path == tmp_path / "spool" / JOURNAL_NAME


async def test_a_write_failed_before_a_kill_is_written_by_the_next_run(
    unused_tcp_port, tmp_path, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    """A paid-for answer whose cache write failed in an outage used to live in memory
    only: a kill -9 (or a forced stop) lost it and the next run paid again. It is
    journaled now, and the next run's cache writes it at open and answers from it."""
    spool = tmp_path / "spool" / "notes.jsonl"
    died = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_A_FAILED_WRITE,
         f"mongodb://127.0.0.1:{unused_tcp_port}/", str(spool)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert mongo_sync[ENRICH_CACHE].find_one({"_id": "v/gemini/paid"}) is None
    live, counters = AsyncMongoClient(mongo_uri), stats()
    cache = EnrichCache(
        live[mongo_db_name], clock=lambda: NOW, stats=counters, journal=journal_beside(spool)
    )
    try:
        await cache.open()
        entry = await cache.get("v/gemini/paid")
        await cache.close()
    finally:
        await live.close()
    assert entry is not None and entry["result"] == {"summary": "s"}
    stored = mongo_sync[ENRICH_CACHE].find_one({"_id": "v/gemini/paid"})
    assert stored["created_at"].replace(tzinfo=UTC) == datetime(2026, 11, 29, tzinfo=UTC)
    assert counters.get_value("enrich/cache_journal_loaded") == 1
    assert counters.get_value("enrich/cache_replayed") == 1
    assert not journal_beside(spool).pending()  # written: the journal is gone
    assert sorted(p.name for p in spool.parent.iterdir()) == []


async def test_a_journaled_entry_never_replaces_a_newer_one(
    unused_tcp_port, tmp_path, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    journal = journal_beside(tmp_path / "notes.jsonl")
    dead, live = dead_client(unused_tcp_port), AsyncMongoClient(mongo_uri)
    older = EnrichCache(dead["x"], clock=lambda: NOW, stats=stats(), retries=0, journal=journal)
    newer = EnrichCache(live[mongo_db_name], clock=lambda: NOW, stats=stats(), journal=journal)
    try:
        await older.put("k", {"result": {"summary": "older"}})  # journaled
        await newer.put("k", {"result": {"summary": "newer"}})  # another run, later
        await newer.open()  # writes the journal
        await older.close()
    finally:
        await dead.close()
        await live.close()
    assert mongo_sync[ENRICH_CACHE].find_one({"_id": "k"})["result"] == {"summary": "newer"}
    assert not journal.pending()


async def test_a_journal_left_in_an_outage_answers_lookups_and_stays_for_the_next_run(
    unused_tcp_port, tmp_path, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    """Written neither during the run nor at its close: the entry stays in the journal
    (counted, not lost); a run that opens while the database is still down answers
    lookups from it; the first run that reaches the database writes it."""
    journal = journal_beside(tmp_path / "notes.jsonl")
    dead = dead_client(unused_tcp_port)
    first, second = stats(), stats()
    try:
        cache = EnrichCache(dead["x"], clock=lambda: NOW, stats=first, retries=0, journal=journal)
        await cache.put("k", {"result": {"summary": "s"}})
        await cache.close()
        cache = EnrichCache(dead["x"], clock=lambda: NOW, stats=second, retries=0, journal=journal)
        await cache.open()
        found = await cache.get("k")
        await cache.close()
    finally:
        await dead.close()
    assert first.get_value("enrich/cache_journal_left") == 1
    assert first.get_value("enrich/cache_lost") is None
    assert found is not None and found["result"] == {"summary": "s"}
    assert journal.pending() and mongo_sync[ENRICH_CACHE].find_one({"_id": "k"}) is None
    live = AsyncMongoClient(mongo_uri)
    try:
        cache = EnrichCache(live[mongo_db_name], clock=lambda: NOW, stats=stats(), journal=journal)
        await cache.open()
    finally:
        await live.close()
    assert mongo_sync[ENRICH_CACHE].find_one({"_id": "k"})["result"] == {"summary": "s"}
    assert not journal.pending()
