"""Every read the pages make but the notes list (``listing.py``), one async function per
page (find only).

Functions take the async database and plain arguments and return plain dicts and
lists for the templates; missing collections are simply empty. Nothing here writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crawler.core import names

LIST_PROJECTION = {
    "title": 1, "user": 1, "tags": 1, "published_at": 1, "last_crawled_at": 1,
    "interact": 1, "found_via": 1, "enrichment.status": 1, "enrichment.backend": 1,
    "enrichment.reason": 1, "enrichment.result.summary": 1, "images": {"$slice": 1},
}  # fmt: skip
MAX_COMMENTS = 500  # top-level comments shown on a note page (with their replies)
MAX_RUNS = 200


async def _list(cursor: Any) -> list[dict[str, Any]]:
    return [doc async for doc in cursor]


def thread(comments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level comments in order, each with ``replies`` (its own, by time)."""
    roots = [c for c in comments if not c.get("root_comment_id")]
    by_root: dict[str, list[dict[str, Any]]] = {}
    for c in comments:
        if c.get("root_comment_id"):
            by_root.setdefault(c["root_comment_id"], []).append(c)
    known = {c.get("comment_id") or c.get("_id") for c in roots}
    orphans = [c for root, replies in by_root.items() if root not in known for c in replies]
    return [
        {**c, "replies": by_root.get(c.get("comment_id") or c.get("_id"), [])} for c in roots
    ] + [{**c, "replies": [], "orphan": True} for c in orphans]


async def note_page(db: Any, note_id: str) -> dict[str, Any] | None:
    note = await db[names.NOTES].find_one({"_id": note_id})
    if note is None:
        return None
    stats = await _list(db[names.NOTE_STATS].find({"note_id": note_id}).sort("crawled_at", 1))
    comments = await _list(
        db[names.COMMENTS].find({"note_id": note_id}).sort("created_at", 1).limit(MAX_COMMENTS * 20)
    )
    return {"note": note, "stats": stats, "thread": thread(comments)[:MAX_COMMENTS]}


async def creators_page(db: Any, page: int, page_size: int) -> dict[str, Any]:
    total = await db[names.USERS].count_documents({})
    users = await _list(
        db[names.USERS]
        .find({})
        .sort([("fans", -1), ("_id", 1)])
        .skip((page - 1) * page_size)
        .limit(page_size)
    )
    return {"users": users, "total": total, "pages": max(1, -(-total // page_size))}


async def creator_page(db: Any, user_id: str) -> dict[str, Any] | None:
    user = await db[names.USERS].find_one({"_id": user_id})
    notes = await _list(
        db[names.NOTES]
        .find({"user.user_id": user_id}, LIST_PROJECTION)
        .sort([("published_at", -1), ("_id", 1)])
        .limit(200)
    )
    if user is None and not notes:
        return None
    stats = await _list(db[names.USER_STATS].find({"user_id": user_id}).sort("crawled_at", 1))
    return {"user": user, "user_id": user_id, "notes": notes, "stats": stats}


async def runs_page(db: Any) -> list[dict[str, Any]]:
    return await _list(db[names.CRAWL_RUNS].find({}).sort("started_at", -1).limit(MAX_RUNS))


async def quota_state(db: Any) -> tuple[dict[str, Any], datetime | None]:
    from pipelines.mongo import MongoQuotaStateStore

    doc = await db[names.GEMINI_QUOTA].find_one({"_id": "state"}, {"updated_at": 1})
    return await MongoQuotaStateStore(db).load(), (doc or {}).get("updated_at")
