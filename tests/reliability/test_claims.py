"""Claims on notes (pipelines/mongo/claims.py) against the real Mongo-wire server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pymongo import AsyncMongoClient

from crawler.core.timeutil import utcnow
from pipelines.mongo import NoteClaims
from pipelines.mongo.claims import CLAIMS, claim, held_by_others, release, renew


async def _db(mongo_uri, mongo_db_name):
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    return client, client[mongo_db_name]


async def test_claim_renew_release(mongo_uri, mongo_db_name) -> None:
    client, db = await _db(mongo_uri, mongo_db_name)
    now = utcnow()
    try:
        assert await claim(db, ["a", "b", "a"], "run-1", 60, now=now) == {"a", "b"}
        assert await claim(db, ["b", "c"], "run-2", 60, now=now) == {"c"}  # b is run-1's
        assert await claim(db, ["a"], "run-1", 60, now=now) == {"a"}  # ours again: fine
        assert await held_by_others(db, ["a", "b", "c", "d"], "run-2", now=now) == {"a", "b"}
        doc = await db[CLAIMS].find_one({"_id": "a"})
        assert doc["owner"] == "run-1" and doc["expires_at"] == now + timedelta(seconds=60)
        # run-1 keeps a alive, b lapses (run-1 died holding it): run-2 gets b, not a.
        later = now + timedelta(seconds=50)
        assert await renew(db, ["a", "c"], "run-1", 60, now=later) == {"a"}
        expired = now + timedelta(seconds=61)
        assert await claim(db, ["a", "b"], "run-2", 60, now=expired) == {"b"}
        assert await release(db, ["a", "b", "c"], "run-2") == 2  # b and c; a is run-1's
        assert await release(db, ["a"], "run-1") == 1
        assert await db[CLAIMS].count_documents({}) == 0
        assert await claim(db, [], "run-1", 60) == set()
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()


async def test_holding_claims_renews_and_releases(mongo_uri, mongo_db_name) -> None:
    client, db = await _db(mongo_uri, mongo_db_name)
    try:
        mine, theirs = NoteClaims(db, "run-1", 0.3), NoteClaims(db, "run-2", 0.3)
        async with mine.holding("n1") as held:
            assert held
            await asyncio.sleep(0.6)  # longer than the ttl: renewed meanwhile
            async with theirs.holding("n1") as other:
                assert not other
        async with theirs.holding("n1") as other:  # released at the end of the block
            assert other
        assert await db[CLAIMS].count_documents({}) == 0
        async with NoteClaims(None, "run-3", 1).holding("n1") as held:
            assert held  # no database: nothing to coordinate with
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()
