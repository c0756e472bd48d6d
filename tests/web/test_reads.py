"""crawler/web/reads.py: the comment thread of a note page (pure), and the page reads
against the embedded Mongo-wire server over TCP."""

from __future__ import annotations

from pymongo import AsyncMongoClient

from crawler.web.reads import creator_page, creators_page, note_page, runs_page, thread


def test_replies_go_under_their_top_level_comment_and_orphans_last() -> None:
    comments = [
        {"_id": "a", "comment_id": "a"},
        {"_id": "r1", "comment_id": "r1", "root_comment_id": "a"},
        {"_id": "b", "comment_id": "b"},
        {"_id": "o1", "comment_id": "o1", "root_comment_id": "gone"},
        {"_id": "r2", "comment_id": "r2", "root_comment_id": "a"},
        {"_id": "c"},  # an id only: replies still find it
        {"_id": "r3", "root_comment_id": "c"},
    ]
    threaded = thread(comments)
    assert [c["_id"] for c in threaded] == ["a", "b", "c", "o1"]
    assert [r["_id"] for r in threaded[0]["replies"]] == ["r1", "r2"]  # in the given order
    assert threaded[1]["replies"] == [] and [r["_id"] for r in threaded[2]["replies"]] == ["r3"]
    assert threaded[3]["orphan"] is True and threaded[3]["replies"] == []
    assert "replies" not in comments[0]  # the input is not changed
    assert thread([]) == []


async def test_missing_collections_read_as_empty_pages(mongo_uri, mongo_db_name) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = client[mongo_db_name]
    try:
        assert await note_page(db, "nope") is None
        assert await creator_page(db, "nobody") is None
        assert await creators_page(db, 1, 20) == {"users": [], "total": 0, "pages": 1}
        assert await runs_page(db) == []
        await db.users.insert_many([{"_id": f"u{i}", "fans": i} for i in range(5)])
        second = await creators_page(db, 2, 2)
        assert [u["_id"] for u in second["users"]] == ["u2", "u1"]  # most fans first
        assert second["total"] == 5 and second["pages"] == 3
        page = await creator_page(db, "u3")  # a creator without notes or stats yet
        assert page == {"user": {"_id": "u3", "fans": 3}, "user_id": "u3", "notes": [],
                        "stats": []}  # fmt: skip
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()
