"""The Gemini quota state store on the embedded server."""

from __future__ import annotations

from pymongo import AsyncMongoClient

from pipelines.mongo import (
    MongoQuotaStateStore,
)
from tests.factories import T0


async def test_quota_store_round_trip(mongo_uri, mongo_db_name):
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = client[mongo_db_name]
        store = MongoQuotaStateStore(db)
        assert await store.load() == {}
        state = {
            "p1/gemini-2.5-flash": {"rpd_used": 17, "exhausted_until": T0, "limits": {"rpm": 10}},
            "p2/gemini-3.0-flash$x": {"rpd_used": 0, "models": ["a.b", "c"]},
            "100%": None,
        }
        await store.save(state)
        assert await MongoQuotaStateStore(db).load() == state
        await store.save({"p1/gemini-2.5-flash": {"rpd_used": 18}})
        assert await store.load() == {"p1/gemini-2.5-flash": {"rpd_used": 18}}
        assert await db.gemini_quota.count_documents({}) == 1
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()
