"""The database goes away in the middle of a crawl: nothing is lost, nothing doubled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from pipelines.mongo import close_mongo
from pipelines.storage import Spool
from sandbox.harness import MongoServer, free_port
from tests.factories import Clock, build_storage, make_note


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[MongoServer]:
    """A server on threads of this process that the test stops and starts."""
    with MongoServer(tmp_path / "db") as server:
        yield server


OUTAGE_SETTINGS = {
    "MONGO_BATCH_SIZE": 20,
    "MONGO_RETRY_TIMES": 2,
    "MONGO_SERVER_SELECTION_TIMEOUT_MS": 1000,  # > pymongo's 500 ms re-check interval
    "MONGO_PROBE_INTERVAL": 30,
}


async def test_server_down_mid_crawl(restartable: MongoServer, tmp_path: Path):
    spool_path = tmp_path / "spool" / "notes.jsonl"
    clock = Clock()
    items = [make_note(i) for i in range(200)]

    p1 = build_storage(restartable.uri, "xhs", spool_path, clock, **OUTAGE_SETTINGS)
    await p1.open_spider()
    try:
        for item in items[:80]:
            await p1.process_item(item)
        await p1.flush()
        restartable.stop()
        for item in items[80:120]:  # 2 batches: the first retries then spools, the next spools
            clock.advance(1)
            await p1.process_item(item)
        await p1.flush()
        stats = p1.crawler.stats.get_stats()
        assert stats["storage/spooled"] == 40 and stats["storage/retries"] == 2
        assert p1.writer is not None and p1.writer.down
        # Back again: the next batch after the probe interval replays the spool first.
        restartable.start()
        clock.advance(60)
        for item in items[120:160]:
            await p1.process_item(item)
        await p1.flush()
        stats = p1.crawler.stats.get_stats()
        assert stats["storage/replayed"] == 40 and not p1.writer.down
        assert not Spool(spool_path).pending()
        # Down again until the end of the run: the close flush goes to the spool.
        restartable.stop()
        for item in items[160:]:
            await p1.process_item(item)
    finally:
        await p1.close_spider()
        await close_mongo(p1.crawler)
    assert p1.crawler.stats.get_value("storage/spooled") == 80
    assert Spool(spool_path).pending()

    # Next start: the spool is replayed before anything else.
    restartable.start()
    p2 = build_storage(restartable.uri, "xhs", spool_path, clock, **OUTAGE_SETTINGS)
    await p2.open_spider()
    await p2.close_spider()
    await close_mongo(p2.crawler)
    assert p2.crawler.stats.get_value("storage/replayed") == 40
    assert not Spool(spool_path).pending()

    client: MongoClient = MongoClient(restartable.uri)
    try:
        db = client.xhs
        assert db.notes.count_documents({}) == 200
        assert sorted(d["_id"] for d in db.notes.find({}, {"_id": 1})) == sorted(
            i.note_id for i in items
        )
        assert db.note_stats.count_documents({}) == 200
        stat_ids = [r["note_id"] for r in db.note_stats.find({}, {"note_id": 1})]
        assert len(set(stat_ids)) == 200
    finally:
        client.close()


async def test_replay_is_idempotent_for_units_already_stored(restartable, tmp_path: Path):
    """A crash between a successful write and the spool's deletion replays stored units:
    notes stay single, stats rows are not doubled, newer data is not overwritten."""
    spool_path = tmp_path / "notes.jsonl"
    clock = Clock()
    p1 = build_storage(restartable.uri, "xhs", spool_path, clock)
    await p1.open_spider()
    for i in range(10):
        await p1.process_item(make_note(i))
    units = list(p1._buffer)
    await p1.close_spider()
    await close_mongo(p1.crawler)
    Spool(spool_path).append(units)  # the same units again, now older than what follows

    clock.advance(10)
    p2 = build_storage(restartable.uri, "xhs", tmp_path / "other.jsonl", clock)
    await p2.open_spider()
    await p2.process_item(make_note(0, title="更新的标题"))
    await p2.close_spider()
    await close_mongo(p2.crawler)

    p3 = build_storage(restartable.uri, "xhs", spool_path, clock)
    await p3.open_spider()
    await p3.close_spider()
    await close_mongo(p3.crawler)
    assert p3.crawler.stats.get_value("storage/replayed") == 10
    client: MongoClient = MongoClient(restartable.uri)
    try:
        assert client.xhs.notes.count_documents({}) == 10
        assert client.xhs.note_stats.count_documents({}) == 11
        assert client.xhs.notes.find_one({"_id": make_note(0).note_id})["title"] == "更新的标题"
    finally:
        client.close()


async def test_embedded_server_taken_over_when_its_process_dies(tmp_path: Path):
    """A crawl using another process's embedded server keeps storing when that process
    crashes: it serves the directory itself, on the same address."""
    import os
    import signal
    import subprocess
    import sys

    from pipelines.mongo import EMBEDDED_JSON, get_mongo, read_embedded_info

    data_dir, port = tmp_path / "mongo", free_port()
    owner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.mongo",
            "serve",
            "--data",
            str(data_dir),
            "--port",
            str(port),
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert f":{port}/" in owner.stdout.readline()
        clock = Clock()
        p = build_storage(
            "",
            "xhs",
            tmp_path / "spool.jsonl",
            clock,
            MONGO_DATA_DIR=str(data_dir),
            MONGO_BATCH_SIZE=10,
            MONGO_SERVER_SELECTION_TIMEOUT_MS=1000,
        )
        await p.open_spider()
        handle = await get_mongo(p.crawler)
        assert handle.embedded and handle.uri_fingerprint == f"mongodb://127.0.0.1:{port}/"
        for i in range(20):
            await p.process_item(make_note(i))
        await p.flush()
        owner.send_signal(signal.SIGKILL)  # a crash: embedded.json stays behind
        owner.wait()
        for i in range(20, 40):
            await p.process_item(make_note(i))
        await p.flush()
        stats = p.crawler.stats.get_stats()
        assert stats["storage/embedded_takeover"] == 1 and "storage/spooled" not in stats
        assert read_embedded_info(data_dir)["pid"] == os.getpid()
        stored = {d["_id"] async for d in handle.db.notes.find({}, {"_id": 1})}
        assert stored == {make_note(i).note_id for i in range(40)}  # journaled: none lost
        assert len([r async for r in handle.db.note_stats.find({})]) == 40
        await p.close_spider()
        await close_mongo(p.crawler)
        assert not (data_dir / EMBEDDED_JSON).exists()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
