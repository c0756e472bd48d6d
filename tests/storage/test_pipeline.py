"""MongoStoragePipeline against the real embedded server over TCP."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from pipelines.mongo import close_mongo
from pipelines.storage import NOTE_INDEXES, NOTE_KIND, MongoStoragePipeline, kind_for_item, kind_of
from tests.factories import Clock, build_storage, make_note


async def run_pipeline(pipeline: MongoStoragePipeline, items: list) -> None:
    await pipeline.open_spider()
    try:
        for item in items:
            assert await pipeline.process_item(item) is item
    finally:
        await pipeline.close_spider()
        await close_mongo(pipeline.crawler)


# "new" the second time: the incremental check's answer was stale (another process
# stored the notes meanwhile): the inserts collide and the notes are merged instead.
@pytest.mark.parametrize("second", ["unchanged", "new"])
async def test_same_notes_twice(mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path, second):
    clock = Clock()
    first = clock()
    p1 = build_storage(
        mongo_uri, mongo_db_name, tmp_path / "spool.jsonl", clock, MONGO_BATCH_SIZE=20
    )
    await run_pipeline(p1, [make_note(i) for i in range(50)])
    clock.advance(3600)
    p2 = build_storage(
        mongo_uri, mongo_db_name, tmp_path / "spool.jsonl", clock, MONGO_BATCH_SIZE=20
    )
    await run_pipeline(p2, [make_note(i, change=second) for i in range(50)])

    assert mongo_sync.notes.count_documents({}) == 50
    assert mongo_sync.note_stats.count_documents({}) == 100
    doc = mongo_sync.notes.find_one({"_id": make_note(3).note_id})
    assert doc["first_seen_at"].replace(tzinfo=None) == first.replace(tzinfo=None)
    assert doc["last_crawled_at"].replace(tzinfo=None) == clock().replace(tzinfo=None)
    assert doc["title"] == "笔记 3" and doc["user"]["user_id"] == "u3"
    assert doc["interact"]["liked"] == 3 and doc["schema_version"] == 1
    assert doc["content_hash"].startswith("sha256:") and doc["crawl_run_id"] == "run-test"
    assert doc["last_change"] == second
    rows = list(mongo_sync.note_stats.find({"note_id": doc["_id"]}).sort("crawled_at", 1))
    assert [r["liked"] for r in rows] == [3, 3] and rows[0]["crawled_at"] < rows[1]["crawled_at"]
    s1, s2 = p1.crawler.stats.get_stats(), p2.crawler.stats.get_stats()
    assert s1["storage/upserted"] == 50 and s1["notes/new"] == 50
    assert s2.get("storage/upserted", 0) == 0 and s2["storage/modified"] == 50
    assert s2[f"notes/{second}"] == 50 and "storage/superseded" not in s2
    assert not (tmp_path / "spool.jsonl").exists()


async def test_indexes_and_timeseries(mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path):
    p = build_storage(mongo_uri, mongo_db_name, tmp_path / "spool.jsonl")
    await run_pipeline(p, [make_note(1)])
    names = set(mongo_sync.notes.index_information())
    assert {name for name, _ in NOTE_INDEXES} <= names
    keys = mongo_sync.notes.index_information()["enrichment_backlog"]["key"]
    assert [k for k, _ in keys] == ["enrichment.status", "enrichment.next_attempt_at"]
    assert {"note_id_crawled_at", "crawl_run_id"} <= set(mongo_sync.note_stats.index_information())
    info = next(mongo_sync.list_collections(filter={"name": "note_stats"}))
    assert info["options"]["timeseries"]["timeField"] == "crawled_at"
    assert p.writer.note_stats_kind == "timeseries"
    # Idempotent: a second start over the same database works and changes nothing.
    p2 = build_storage(mongo_uri, mongo_db_name, tmp_path / "spool.jsonl")
    await run_pipeline(p2, [])
    assert set(mongo_sync.notes.index_information()) == names


async def test_flush_interval_writes_without_close(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    clock = Clock()
    p = build_storage(
        mongo_uri,
        mongo_db_name,
        tmp_path / "spool.jsonl",
        clock,
        MONGO_BATCH_SIZE=1000,
        MONGO_FLUSH_INTERVAL=0.05,
    )
    await p.open_spider()
    try:
        for i in range(3):
            await p.process_item(make_note(i))
        assert mongo_sync.notes.count_documents({}) == 0  # below the size bound
        clock.advance(1)  # the oldest buffered note is now older than the interval
        for _ in range(200):
            if mongo_sync.notes.count_documents({}) == 3:
                break
            await asyncio.sleep(0.02)
        assert mongo_sync.notes.count_documents({}) == 3
    finally:
        await p.close_spider()
        await close_mongo(p.crawler)


def _enrichment(status: str, backend: str, summary: str, cache_key: str = "c1") -> EnrichmentState:
    return EnrichmentState(
        status=EnrichmentStatus(status),
        backend=backend,
        cache_key=cache_key,
        result={"summary": summary} if status == "done" else None,
        reason=None if status == "done" else "quota_per_day",
    )


# "new": each note is inserted, collides with the stored one and is merged (a stale
# incremental answer); "changed": the merge updates directly.
@pytest.mark.parametrize("change", ["new", "changed"])
async def test_enrichment_merge(mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path, change):
    clock = Clock()
    spool = tmp_path / "spool.jsonl"

    async def store(item) -> dict:
        clock.advance(60)
        item.change = change
        await run_pipeline(build_storage(mongo_uri, mongo_db_name, spool, clock), [item])
        return mongo_sync.notes.find_one({"_id": item.note_id})["enrichment"]

    gemini = _enrichment("done", "gemini", "模型摘要")
    assert (await store(make_note(1, enrichment=gemini)))["result"]["summary"] == "模型摘要"
    # A local summary never overwrites a gemini one, a deferred result never a done one.
    kept = await store(make_note(1, enrichment=_enrichment("done", "local", "本地摘要")))
    assert kept["backend"] == "gemini" and "stale" not in kept
    assert (
        kept["content_hash"]
        == mongo_sync.notes.find_one({"_id": make_note(1).note_id})["content_hash"]
    )
    kept = await store(make_note(1, enrichment=_enrichment("deferred", "none", "")))
    assert kept["status"] == "done" and kept["backend"] == "gemini"
    assert (await store(make_note(1, enrichment=None)))["backend"] == "gemini"
    # A newer gemini result replaces the older one.
    newer = await store(make_note(1, enrichment=_enrichment("done", "gemini", "新摘要", "c2")))
    assert newer["result"]["summary"] == "新摘要" and "stale" not in newer
    # Content changed while only a worse result is available: kept, and visibly stale.
    stale = await store(make_note(1, desc="全新正文", enrichment=_enrichment("failed", "none", "")))
    note = mongo_sync.notes.find_one({"_id": make_note(1).note_id})
    assert stale["result"]["summary"] == "新摘要" and note["desc"] == "全新正文"
    assert stale["content_hash"] != note["content_hash"] and stale["stale"] is True
    assert (
        mongo_sync.notes.count_documents(
            {"$expr": {"$ne": ["$enrichment.content_hash", "$content_hash"]}}
        )
        == 1
    )
    # Local (done) beats deferred; gemini then replaces local.
    await store(make_note(2, enrichment=_enrichment("deferred", "none", "")))
    assert (await store(make_note(2, enrichment=_enrichment("done", "local", "本地"))))[
        "backend"
    ] == "local"
    assert (await store(make_note(2, enrichment=gemini)))["backend"] == "gemini"
    # A stale result is replaced by any result for the new content at least as good.
    fresh = await store(
        make_note(1, desc="全新正文", enrichment=_enrichment("done", "gemini", "新"))
    )
    assert fresh["result"]["summary"] == "新" and "stale" not in fresh


async def test_hostile_note_does_not_break_batch(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    hostile = make_note(
        7,
        title="坏\ud800标题",
        tags=["$where", "a.b", "正常"],
        desc="长" * 5000,
        interact=make_note(7).interact,
    )
    hostile.interact.raw = {"$gt": "1", "a.b": "2", "x\ud83d": "3"}
    hostile.enrichment = {"status": "done", "backend": "local", "result": {"k.$": "v"}}
    too_big = make_note(8, desc="x" * 4000, tags=["y" * 4000] * 5000)
    items = (
        [make_note(i) for i in range(5)]
        + [hostile, too_big]
        + [make_note(i) for i in range(10, 15)]
    )
    p = build_storage(
        mongo_uri, mongo_db_name, tmp_path / "spool.jsonl", MONGO_MAX_STRING_CHARS=4000
    )
    await run_pipeline(p, items)

    assert mongo_sync.notes.count_documents({}) == 11
    doc = mongo_sync.notes.find_one({"_id": hostile.note_id})
    assert doc["title"] == "坏\ufffd标题"
    assert doc["tags"] == ["$where", "a.b", "正常"]  # values are kept as they are
    assert doc["interact"]["raw"] == {"＄gt": "1", "a．b": "2", "x\ufffd": "3"}
    assert doc["enrichment"]["result"] == {"k．＄": "v"}
    assert len(doc["desc"]) == 4000 + len("…[truncated]") and doc["truncated_fields"] == ["desc"]
    stats = p.crawler.stats.get_stats()
    assert stats["storage/errors/document_too_large"] == 1
    assert stats["storage/upserted"] == 11 and stats["storage/truncated_notes"] == 1


async def test_write_error_for_one_document_keeps_the_others(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path
):
    # A unique index the analysts might add: two notes with one url collide.
    mongo_sync.notes.create_index("url", unique=True)
    items = [make_note(i) for i in range(6)]
    items[4].url = items[1].url
    p = build_storage(mongo_uri, mongo_db_name, tmp_path / "spool.jsonl")
    await run_pipeline(p, items)
    assert mongo_sync.notes.count_documents({}) == 5
    assert mongo_sync.note_stats.count_documents({}) == 6
    stats = p.crawler.stats.get_stats()
    assert stats["storage/errors/duplicate_key"] == 1
    assert not (tmp_path / "spool.jsonl").exists()


async def test_transient_error_is_retried(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    p = build_storage(mongo_uri, mongo_db_name, tmp_path / "spool.jsonl")
    await p.open_spider()
    mongo_sync.client.admin.command(
        "configureFailPoint",
        "failCommand",
        mode={"times": 2},  # pymongo retries once by itself
        data={"failCommands": ["insert", "update"], "closeConnection": True},
    )
    try:
        for i in range(3):
            await p.process_item(make_note(i))
    finally:
        await p.close_spider()
        await close_mongo(p.crawler)
        mongo_sync.client.admin.command("configureFailPoint", "failCommand", mode="off")
    assert mongo_sync.notes.count_documents({}) == 3
    stats = p.crawler.stats.get_stats()
    assert stats["storage/retries"] >= 1 and "storage/spooled" not in stats


@pytest.mark.parametrize("batch", [1, 4])
async def test_same_note_twice_in_one_batch(mongo_uri, mongo_db_name, mongo_sync, tmp_path, batch):
    clock = Clock()
    p = build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl", clock, MONGO_BATCH_SIZE=batch)
    await p.open_spider()
    try:
        await p.process_item(make_note(1, title="旧"))
        clock.advance(1)
        await p.process_item(make_note(1, title="新"))
    finally:
        await p.close_spider()
        await close_mongo(p.crawler)
    assert mongo_sync.notes.find_one({"_id": make_note(1).note_id})["title"] == "新"
    assert mongo_sync.note_stats.count_documents({}) == 2


async def test_stored_note_passing_through_again(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    """The enrich spider re-yields stored notes (fetched_at from the first crawl): the
    enrichment is merged, but that is no new observation of the note."""
    clock = Clock()
    first = make_note(1, fetched_at=clock(), enrichment=_enrichment("deferred", "none", ""))
    p1 = build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl", clock)
    await run_pipeline(p1, [first])
    clock.advance(86400)
    again = make_note(
        1,
        fetched_at=first.fetched_at,
        enrichment=_enrichment("done", "gemini", "摘要"),
        from_backlog=True,
    )
    p2 = build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl", clock)
    await run_pipeline(p2, [again])
    doc = mongo_sync.notes.find_one({"_id": first.note_id})
    assert doc["enrichment"]["status"] == "done"
    assert doc["last_crawled_at"].replace(tzinfo=None) == first.fetched_at.replace(tzinfo=None)
    assert mongo_sync.note_stats.count_documents({}) == 1


async def test_backlog_mark_not_timestamps_decides(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    """``from_backlog`` alone says a note is passing through again: a backlog item
    without a fetch time does not move last_crawled_at, and an item fetched long
    before this run but not marked is a sighting (a note_stats row)."""
    clock = Clock()
    first = make_note(1, fetched_at=clock())
    await run_pipeline(
        build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl", clock), [first]
    )
    clock.advance(86400)
    backlog = make_note(
        1, change="unchanged", enrichment=_enrichment("done", "local", "本地"), from_backlog=True
    )
    await run_pipeline(
        build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl", clock), [backlog]
    )
    doc = mongo_sync.notes.find_one({"_id": first.note_id})
    assert doc["enrichment"]["backend"] == "local"
    assert doc["last_crawled_at"].replace(tzinfo=None) == first.fetched_at.replace(tzinfo=None)
    assert mongo_sync.note_stats.count_documents({}) == 1
    late = make_note(2, fetched_at=clock() - timedelta(days=3))
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl", clock), [late])
    assert mongo_sync.note_stats.count_documents({"note_id": late.note_id}) == 1


@pytest.mark.parametrize("change", ["new", "changed"])
async def test_older_data_never_overwrites_newer(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path, change
):
    """A unit fetched before the stored one (a slow worker, a late replay) is superseded:
    the newer fields stay, first_seen_at moves back to the earlier sighting."""
    clock = Clock()
    newer = make_note(1, title="新", fetched_at=clock() + timedelta(minutes=5))
    older = make_note(1, title="旧", fetched_at=clock(), change=change)
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl"), [newer])
    p = build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl")
    await run_pipeline(p, [older])
    doc = mongo_sync.notes.find_one({"_id": newer.note_id})
    assert doc["title"] == "新"
    assert doc["last_crawled_at"].replace(tzinfo=None) == newer.fetched_at.replace(tzinfo=None)
    assert doc["first_seen_at"].replace(tzinfo=None) == older.fetched_at.replace(tzinfo=None)
    stats = p.crawler.stats.get_stats()
    assert stats["storage/superseded"] == 1 and not stats.get("storage/upserted")
    assert mongo_sync.note_stats.count_documents({}) == 2


async def test_items_storage_cannot_store_pass_through(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path
):
    """An item of no storage kind, and one whose preparation fails, go on unchanged
    (counted, logged); the others of the batch are stored."""
    broken = make_note(2)
    broken.interact = "not counts"  # fields.get("interact") on a string: a bug's shape
    p = build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl")
    await run_pipeline(p, [{"note_id": "a dict"}, broken, make_note(1)])
    stats = p.crawler.stats.get_stats()
    assert stats["storage/errors/unknown_item"] == 1
    assert stats["storage/errors/prepare_failed"] == 1
    assert {d["_id"] for d in mongo_sync.notes.find({}, {"_id": 1})} == {make_note(1).note_id}


def test_kinds_route_items_and_units():
    unit = {"type": "note", "v": NOTE_KIND.version}
    assert kind_for_item(make_note(1)) is NOTE_KIND and kind_for_item({"note_id": "x"}) is None
    assert kind_of(unit) is NOTE_KIND
    assert kind_of({**unit, "v": 99}) is None and kind_of({"type": "other", "v": 1}) is None
