"""The notes listing: rows of odd documents, the list's filters and orders, and how it
keeps up with the store (a new note at once, a re-crawl within DELTA_S, anything else
within RELOAD_S), over the real embedded Mongo-wire server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from crawler.web.listing import DELTA_S, RELOAD_S, NoteListing
from crawler.web.queries import ListRow, NoteQuery
from tests.export.factory import note_doc, note_id

N = 120


def _ids(rows: list[ListRow]) -> list[str]:
    return [r.note_id for r in rows]


def test_rows_of_odd_documents_and_mongo_type_order() -> None:
    rows = [
        ListRow.of({"_id": "a", "interact": {"liked": 5}}),
        ListRow.of({"_id": "b", "interact": {"liked": "12345678901234567890123"}}),
        ListRow.of({"_id": "c"}),  # no likes at all: last in a descending sort
        ListRow.of({"_id": "d", "interact": {"liked": 5}}),  # ties: by id
        ListRow.of({"_id": "e", "interact": {"liked": 9.5}, "tags": "旅行", "images": "x"}),
    ]
    likes = NoteQuery.parse({"sort": "likes"}).sort_index
    ordered = sorted(
        sorted(rows, key=lambda r: r.note_id), key=lambda r: r.keys[likes], reverse=True
    )
    assert _ids(ordered) == ["b", "e", "a", "d", "c"]  # strings above numbers, as MongoDB
    assert rows[4].tags == ("旅行",) and rows[2].text == "" and rows[2].user_id is None


def test_predicate_search_author_tag_dates() -> None:
    doc = note_doc(13)
    row = ListRow.of(doc)
    ok = lambda **q: NoteQuery.parse(q).predicate()(row)  # noqa: E731
    assert ok(q="spf13") and ok(q="笔记 13") and ok(q="正文 13") and ok(q="图中文字 13-2")
    assert not ok(q="美食正文")  # never across the end of one text and the next
    assert ok(author="u013") and ok(author="者13") and not ok(author="u01")
    assert ok(tag=doc["tags"][1]) and not ok(tag="tag-not-there")
    day = doc["published_at"].date().isoformat()
    assert ok(**{"from": day, "to": day}) and not ok(**{"to": "2026-10-31"})
    assert ok(status="done", backend="local") and not ok(status="deferred")


@pytest.fixture
async def db(mongo_sync, mongo_uri, mongo_db_name):
    mongo_sync.notes.insert_many([note_doc(i) for i in range(N)])
    client = AsyncMongoClient(mongo_uri, tz_aware=True)
    yield client[mongo_db_name]
    await client.close()


async def _page(listing: NoteListing, db, **params: str) -> dict:
    await listing.refresh(db)
    return await listing.page(db, NoteQuery.parse(params), 25)


async def test_pages_match_the_documents(db) -> None:
    listing = NoteListing()
    docs = [note_doc(i) for i in range(N)]
    page = await _page(listing, db, sort="likes", page="2")
    want = sorted(docs, key=lambda d: -d["interact"]["liked"])[25:50]
    assert [n["_id"] for n in page["notes"]] == [d["_id"] for d in want]
    assert page["total"] == N and page["pages"] == 5
    assert set(page["notes"][0]) <= {"_id", "title", "user", "tags", "published_at",
                                     "last_crawled_at", "interact", "found_via", "enrichment",
                                     "images"}  # fmt: skip
    page = await _page(listing, db, tag="旅行", status="done")
    want = [d for d in docs if "旅行" in d["tags"] and d["enrichment"]["status"] == "done"]
    assert page["total"] == len(want) > 0
    crawled = sorted(want, key=lambda d: (-d["last_crawled_at"].timestamp(), d["_id"]))
    assert [n["_id"] for n in page["notes"]] == [d["_id"] for d in crawled][:25]
    assert listing.choices["tags"][0] in {"防晒", "护肤", "旅行", "美食", "穿搭"}


async def test_listing_keeps_up_with_the_store(db) -> None:
    now = [0.0]
    listing = NoteListing(clock=lambda: now[0])
    assert (await _page(listing, db))["total"] == N

    await db.notes.insert_one({"_id": "fresh", "title": "刚刚写入"})  # no crawl time at all
    page = await _page(listing, db, q="刚刚")
    assert [n["_id"] for n in page["notes"]] == ["fresh"]  # a new note: at once

    later = datetime.now(UTC) + timedelta(days=365)
    await db.notes.update_one(
        {"_id": note_id(3)}, {"$set": {"interact.liked": 10**9, "last_crawled_at": later}}
    )
    now[0] += DELTA_S + 1  # a re-crawl: within DELTA_S, in the background
    await _until(listing, db, lambda p: p["notes"][0]["_id"] == note_id(3), sort="likes")

    await db.notes.update_one({"_id": note_id(4)}, {"$set": {"enrichment.status": "failed"}})
    now[0] += RELOAD_S + 1  # anything else: the next full load
    await _until(listing, db, lambda p: note_id(4) in {n["_id"] for n in p["notes"]},
                 status="failed", author="u004")  # fmt: skip


async def _until(listing: NoteListing, db, cond, **params: str) -> None:
    for _ in range(100):
        if cond(await _page(listing, db, **params)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the listing did not show the change for {params}")
