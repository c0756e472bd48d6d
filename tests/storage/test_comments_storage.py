"""Comments through MongoStoragePipeline against the real embedded server over TCP:
one document per comment, upserted by id, counts moving, thread fields on the note."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from crawler.core.items import CommentsCrawled, CountText
from pipelines.mongo import close_mongo
from pipelines.storage import MongoStoragePipeline
from pipelines.storage.comments import comment_writes, new_comment_document, prepare_comment_unit
from pipelines.storage.schema import COMMENT_INDEXES
from tests.factories import T0, Clock, build_storage, make_comment, make_note


async def run_pipeline(pipeline: MongoStoragePipeline, items: list) -> None:
    await pipeline.open_spider()
    try:
        for item in items:
            assert await pipeline.process_item(item) is item
    finally:
        await pipeline.close_spider()
        await close_mongo(pipeline.crawler)


def thread(i: int, roots: int, replies: int, *, likes: int = 0) -> list:
    out = []
    for k in range(roots):
        root = make_comment(i, k * 100, like_count=CountText(k + likes, str(k + likes)))
        out.append(root)
        out += [make_comment(i, k * 100 + j, root=root.comment_id) for j in range(1, replies + 1)]
    return out


def with_thread(i: int, comments: list, **overrides) -> object:
    crawled = CommentsCrawled(
        note_count=len(comments),
        wanted_comments=None,
        wanted_replies=None,
        read=len(comments),
        pages=3,
        reloads=0,
        at=T0,
        shown=str(len(comments)),
    )
    values = {
        "comments": comments,
        "comments_complete": True,
        "comments_reason": None,
        "comments_crawled": crawled,
        **overrides,
    }
    return make_note(i, **values)


async def test_thread_stored_then_recrawled_adds_new_and_moves_counts(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
) -> None:
    clock = Clock()
    first = clock()
    spool = tmp_path / "spool.jsonl"
    p1 = build_storage(mongo_uri, mongo_db_name, spool, clock, MONGO_BATCH_SIZE=7)
    await run_pipeline(p1, [with_thread(i, thread(i, 4, 3)) for i in range(3)])
    assert mongo_sync.comments.count_documents({}) == 3 * 16
    assert p1.crawler.stats.get_value("storage/upserted") == 3 + 3 * 16

    clock.advance(3600)
    # Second crawl: one more top-level comment per note, likes up by 10.
    p2 = build_storage(mongo_uri, mongo_db_name, spool, clock, MONGO_BATCH_SIZE=7)
    await run_pipeline(
        p2,
        [with_thread(i, thread(i, 5, 3, likes=10), change="unchanged") for i in range(3)],
    )
    assert mongo_sync.comments.count_documents({}) == 3 * 20
    root = mongo_sync.comments.find_one({"_id": make_comment(1, 200).comment_id})
    assert root["like_count"] == 12 and root["like_count_raw"] == "12"
    assert root["first_seen_at"].replace(tzinfo=None) == first.replace(tzinfo=None)
    assert root["last_seen_at"].replace(tzinfo=None) == clock().replace(tzinfo=None)
    assert root["note_id"] == make_note(1).note_id and root["root_comment_id"] is None
    assert root["user"] == {"user_id": "c200", "nickname": "读者200", "avatar": None}
    reply = mongo_sync.comments.find_one({"_id": make_comment(1, 201).comment_id})
    assert reply["root_comment_id"] == root["_id"]
    assert reply["target_comment"] == {
        "id": root["_id"],
        "user": {"user_id": "u1", "nickname": "用户1", "avatar": None},
    }
    assert reply["reply_count"] is None and reply["status"] == 0
    note = mongo_sync.notes.find_one({"_id": make_note(1).note_id})
    assert "comments" not in note
    assert note["comments_complete"] is True and note["comments_reason"] is None
    assert note["comments_crawled"]["shown"] == "20"  # the count as shown: the next crawl compares it
    assert note["comments_crawled"]["read"] == 20 and note["comments_crawled"]["note_count"] == 20


async def test_note_without_a_thread_read_keeps_the_stored_thread_fields(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
) -> None:
    clock = Clock()
    spool = tmp_path / "spool.jsonl"
    p1 = build_storage(mongo_uri, mongo_db_name, spool, clock)
    await run_pipeline(
        p1, [with_thread(0, thread(0, 2, 1), comments_complete=False, comments_reason="captcha")]
    )
    clock.advance(60)
    p2 = build_storage(mongo_uri, mongo_db_name, spool, clock)
    await run_pipeline(p2, [make_note(0, change="unchanged")])  # comments not read
    note = mongo_sync.notes.find_one({"_id": make_note(0).note_id})
    assert note["comments_complete"] is False and note["comments_reason"] == "captcha"
    assert note["comments_crawled"]["read"] == 4
    assert mongo_sync.comments.count_documents({}) == 4


async def test_indexes_and_a_100kb_comment(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    huge = make_comment(0, 1, content="长" * 100_000)
    p = build_storage(
        mongo_uri, mongo_db_name, tmp_path / "spool.jsonl", MONGO_MAX_STRING_CHARS=5000
    )
    await run_pipeline(p, [with_thread(0, [huge])])
    info = mongo_sync.comments.index_information()
    for name, keys in COMMENT_INDEXES:
        assert [tuple(k) for k in info[name]["key"]] == [(f, d) for f, d in keys]
    doc = mongo_sync.comments.find_one({"_id": huge.comment_id})
    assert len(doc["content"]) < 5100 and doc["truncated_fields"] == ["content"]


def test_merge_rules_are_order_free_for_an_older_unit() -> None:
    newer = prepare_comment_unit(make_comment(0, 1), now=T0, run_id="r", max_chars=100)
    older_item = dataclasses.replace(make_comment(0, 1), fetched_at=None)
    older = prepare_comment_unit(older_item, now=T0.replace(year=2025), run_id="r", max_chars=100)
    ((flt, update, upsert),) = comment_writes(older)
    # The older unit only writes where nothing newer is stored (else it collides: superseded).
    assert flt == {"_id": older["comment_id"], "last_seen_at": {"$not": {"$gt": older["seen_at"]}}}
    assert update["$min"] == {"first_seen_at": older["seen_at"]} and upsert
    assert new_comment_document(newer) is None  # its note was stored: merge, no insert
    fresh = prepare_comment_unit(
        make_comment(0, 1), now=T0, run_id="r", max_chars=100, note_new=True
    )
    assert new_comment_document(fresh)["first_seen_at"] == T0
    assert new_comment_document({**fresh, "replayed": True}) is None


async def test_comments_spooled_while_mongo_is_down_are_replayed_once(tmp_path: Path) -> None:
    from pymongo import MongoClient

    from pipelines.storage import Spool
    from sandbox.harness import MongoServer

    settings = {"MONGO_BATCH_SIZE": 10, "MONGO_RETRY_TIMES": 1,
                "MONGO_SERVER_SELECTION_TIMEOUT_MS": 1000, "MONGO_PROBE_INTERVAL": 30}  # fmt: skip
    spool_path = tmp_path / "spool.jsonl"
    clock = Clock()
    with MongoServer(tmp_path / "db") as server:
        p1 = build_storage(server.uri, "xhs", spool_path, clock, **settings)
        await p1.open_spider()
        try:
            await p1.process_item(with_thread(0, thread(0, 3, 2)))
            await p1.flush()
            server.stop()
            clock.advance(60)
            await p1.process_item(with_thread(1, thread(1, 3, 2), change="new"))
            await p1.process_item(with_thread(0, thread(0, 4, 2, likes=5), change="unchanged"))
            await p1.flush()
        finally:
            await p1.close_spider()
            await close_mongo(p1.crawler)
        assert p1.crawler.stats.get_value("storage/spooled") == 2 + 9 + 12
        server.start()
        p2 = build_storage(server.uri, "xhs", spool_path, clock, **settings)
        await p2.open_spider()  # replays the spool first
        await p2.close_spider()
        await close_mongo(p2.crawler)
        assert not Spool(spool_path).pending()
        client: MongoClient = MongoClient(server.uri)
        try:
            comments = client.xhs.comments
            assert comments.count_documents({}) == 9 + 9 + 3
            root = comments.find_one({"_id": make_comment(0, 0).comment_id})
            assert root["like_count"] == 5  # the later (spooled) read won
            assert root["first_seen_at"] < root["last_seen_at"]
        finally:
            client.close()
