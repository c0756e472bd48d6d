"""What a run's report shows, read from the store for one run id.

The run's notes are the ``note_stats`` rows carrying its id (one per note the crawl
saw, with the counts of that moment), so the report of a past run shows that run's
notes and likes even after later runs moved ``notes.crawl_run_id`` on. An enrich run
writes no rows: its notes are those whose enrichment it produced (``updated_at``
within the run). Charts count over the same note ids.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from crawler.core.names import CRAWL_RUNS, NOTE_STATS, NOTES

MAX_NOTES = 500  # rows of the notes table: a larger run says how many more (keeps < 300 KB)

_NOTE_FIELDS = {
    "title": 1, "url": 1, "user.nickname": 1, "user.user_id": 1, "interact.liked": 1,
    "images.path": 1, "images.status": 1, "images.url": 1, "images.error": 1,
    "enrichment.status": 1, "enrichment.backend": 1, "enrichment.reason": 1,
    "enrichment.result.summary": 1, "published_at": 1, "tags": 1, "last_change": 1,
}  # fmt: skip


async def run_note_ids(db: Any, run: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The run's note ids (first-seen order) and each one's likes as that run saw them."""
    likes: dict[str, Any] = {}
    async for row in db[NOTE_STATS].find({"crawl_run_id": run["_id"]}, {"note_id": 1, "liked": 1}):
        likes.setdefault(row["note_id"], row.get("liked"))
    if likes or run.get("spider") != "enrich" or not isinstance(run.get("started_at"), datetime):
        return list(likes), likes
    window: dict[str, Any] = {"$gte": run["started_at"]}
    if isinstance(run.get("finished_at"), datetime):
        window["$lte"] = run["finished_at"] + timedelta(seconds=5)
    cursor = db[NOTES].find({"enrichment.updated_at": window}, {"_id": 1})
    return [doc["_id"] async for doc in cursor], likes


async def _aggregate(db: Any, pipeline: list[dict[str, Any]]) -> list[tuple[str, int]]:
    rows = await (await db[NOTES].aggregate(pipeline)).to_list()
    return [(str(row["_id"]), int(row["n"])) for row in rows]


async def collect_report_data(db: Any, run_id: str) -> dict[str, Any]:
    """Everything the report shows for ``run_id`` (LookupError when no such run)."""
    run = await db[CRAWL_RUNS].find_one({"_id": run_id})
    if run is None:
        raise LookupError(f"no crawl_runs record with _id {run_id!r}")
    ids, likes = await run_note_ids(db, run)
    match = {"$match": {"_id": {"$in": ids}}}
    per_day = await _aggregate(db, [
        {"$match": {"_id": {"$in": ids}, "published_at": {"$type": "date"}}},
        {"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$published_at"}},
                    "n": {"$sum": 1}}},
        {"$sort": {"_id": 1}},
    ])  # fmt: skip
    tags = await _aggregate(db, [
        match, {"$unwind": "$tags"}, {"$group": {"_id": "$tags", "n": {"$sum": 1}}},
        {"$sort": {"n": -1, "_id": 1}}, {"$limit": 15},
    ])  # fmt: skip
    statuses = await _aggregate(db, [
        match,
        {"$group": {"_id": {"$ifNull": ["$enrichment.status", "none"]}, "n": {"$sum": 1}}},
        {"$sort": {"_id": 1}},
    ])  # fmt: skip
    by_id = {
        doc["_id"]: doc
        async for doc in db[NOTES].find({"_id": {"$in": ids[:MAX_NOTES]}}, _NOTE_FIELDS)
    }
    notes = []
    for note_id in ids[:MAX_NOTES]:
        doc = by_id.get(note_id, {"_id": note_id})
        if note_id in likes:  # the count this run saw, not today's
            doc = {**doc, "interact": {**(doc.get("interact") or {}), "liked": likes[note_id]}}
        notes.append(doc)
    return {
        "run": run,
        "note_count": len(ids),
        "notes": notes,
        "failures": list(run.get("failures") or []) + note_failures(notes),
        "per_day": per_day,
        "tags": tags,
        "enrichment": statuses,
    }


def note_failures(notes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Failed image downloads and failed enrichments of the run's notes, with URL and reason."""
    found = []
    for doc in notes:
        for image in doc.get("images") or []:
            if image.get("status") == "failed":
                error = str(image.get("error") or "failed")
                found.append({"url": str(image.get("url") or doc.get("url") or doc["_id"]),
                              "reason": f"image {error.partition(':')[0]}", "message": error})  # fmt: skip
        state = EnrichmentState.from_document(doc.get("enrichment"))
        if state is not None and state.status is EnrichmentStatus.FAILED:
            reason = str(state.reason or "failed")
            found.append({"url": str(doc.get("url") or doc["_id"]),
                          "reason": f"enrichment {reason.partition(':')[0]}", "message": reason})  # fmt: skip
    return found
