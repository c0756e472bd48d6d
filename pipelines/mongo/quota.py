"""The Gemini client's quota in collection ``gemini_quota``: its persisted state
(:class:`MongoQuotaStateStore`, whole-state saves between runs) and the day counts
shared by concurrent workers (:class:`MongoQuotaLedger`, atomic per-request updates)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from crawler.core.names import GEMINI_QUOTA
from crawler.core.timeutil import Clock, aware, utcnow
from pipelines.gemini import Grant, pacific_day
from pipelines.mongo.keys import escape_keys, unescape_keys


class MongoQuotaStateStore:
    """The Gemini client's ``QuotaStateStore`` in collection ``gemini_quota``.

    One document ``{_id: doc_id (default "state"), state: {...}, updated_at}``; the
    state is the client's opaque dict (keys like ``project/model`` contain dots, so
    they are escaped on save and restored on load by :mod:`pipelines.mongo.keys`).
    Last writer wins between concurrent processes; the client saves its whole state
    each time.
    """

    def __init__(self, db: AsyncDatabase, doc_id: str = "state", *, clock: Clock = utcnow):
        self._coll = db[GEMINI_QUOTA]
        self._doc_id = doc_id
        self._clock = clock

    async def load(self) -> dict:
        doc = await self._coll.find_one({"_id": self._doc_id})
        if not doc or not isinstance(doc.get("state"), Mapping):
            return {}
        return unescape_keys(doc["state"])

    async def save(self, state: dict) -> None:
        await self._coll.replace_one(
            {"_id": self._doc_id},
            {"state": escape_keys(state), "updated_at": self._clock()},
            upsert=True,
        )


def _day_id(project: str, model: str, now: float) -> str:
    return f"day:{project}|{model}|{pacific_day(now).isoformat()}"


class MongoQuotaLedger:
    """The day's request count of every (project, model), shared by all workers on one
    store (the client's ``QuotaLedger``), in collection ``gemini_quota`` beside the state.

    One document per pair and Pacific day, ``_id: "day:<project>|<model>|<YYYY-MM-DD>"``
    with ``count``, ``limit`` (the lowest daily limit anyone knew) and ``blocked_until``
    (after a per-day 429). Every change is one atomic update:

    - ``reserve(..., n)``: ``$inc count n`` on a filter that matches only while
      ``count + n <= limit`` and the pair is not blocked; a document that does not match
      makes the upsert collide on ``_id`` (DuplicateKeyError), which is the refusal (all
      ``n`` or none). Two workers can never both take the last request of the day. A
      lower limit stored by someone else than the caller's is checked after the update
      (the ``n`` are given back when the count passed it).
    - ``refund(..., n)``: ``$inc count -n`` while ``count >= n``;
    - ``block``: ``$max blocked_until``, ``$min limit``.

    Reserving several requests at once is the client's choice
    (:class:`pipelines.gemini.shared_books.SharedBooks` reserves blocks far from the
    limit, one at a time near it).
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self._coll = db[GEMINI_QUOTA]

    async def reserve(
        self, project: str, model: str, now: float, limit: int | None, n: int = 1
    ) -> Grant:
        doc_id = _day_id(project, model, now)
        at = datetime.fromtimestamp(now, UTC)
        free: list[dict[str, Any]] = [
            {"$or": [{"blocked_until": None}, {"blocked_until": {"$lte": at}}]}
        ]
        if limit is not None:
            free.append({"count": {"$lte": limit - n}})
        update: dict[str, Any] = {
            "$inc": {"count": n},
            "$setOnInsert": {"project": project, "model": model, "day": doc_id.rsplit("|", 1)[1]},
        }
        if limit is not None:
            update["$min"] = {"limit": limit}
        try:
            doc = await self._coll.find_one_and_update(
                {"_id": doc_id, "$and": free},
                update,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            doc = await self._coll.find_one({"_id": doc_id}) or {}
            return Grant(False, int(doc.get("count") or 0), *_known(doc))
        if doc is None:  # applied, but the server did not return it (an insert race)
            doc = await self._coll.find_one({"_id": doc_id}) or {}
        stored_limit, blocked = _known(doc)
        count = int(doc.get("count") or 0)
        if stored_limit is not None and count > stored_limit:
            # Someone learned a lower limit than ours meanwhile: give the requests back.
            await self.refund(project, model, now, n)
            return Grant(False, count - n, stored_limit, blocked)
        return Grant(True, count, stored_limit, blocked)

    async def refund(self, project: str, model: str, sent_at: float, n: int = 1) -> None:
        await self._coll.update_one(
            {"_id": _day_id(project, model, sent_at), "count": {"$gte": n}},
            {"$inc": {"count": -n}},
        )

    async def block(
        self, project: str, model: str, now: float, until: float, limit: int | None
    ) -> None:
        update: dict[str, Any] = {"$max": {"blocked_until": datetime.fromtimestamp(until, UTC)}}
        if limit:
            update["$min"] = {"limit": int(limit)}
        await self._coll.update_one({"_id": _day_id(project, model, now)}, update, upsert=True)

    async def day_documents(self) -> list[dict[str, Any]]:
        """Every stored day count (benchmarks and tests read them)."""
        return [d async for d in self._coll.find({"_id": {"$regex": "^day:"}})]


def _known(doc: Mapping[str, Any]) -> tuple[int | None, float | None]:
    limit = doc.get("limit")
    blocked = doc.get("blocked_until")
    if isinstance(blocked, datetime):
        blocked_ts: float | None = aware(blocked).timestamp()
    else:
        blocked_ts = None
    return (int(limit) if limit is not None else None), blocked_ts
