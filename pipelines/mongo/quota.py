"""The Gemini client's persisted quota state in collection ``gemini_quota``."""

from __future__ import annotations

from collections.abc import Mapping

from pymongo.asynchronous.database import AsyncDatabase

from crawler.core.names import GEMINI_QUOTA
from crawler.core.timeutil import Clock, utcnow
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
