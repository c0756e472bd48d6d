"""The run lease: acquire, renew, expire and take over, release."""

from __future__ import annotations

from datetime import timedelta

from pymongo import AsyncMongoClient

from pipelines.mongo import (
    acquire_lease,
    release_lease,
    renew_lease,
)
from tests.factories import T0


async def test_lease(mongo_uri, mongo_db_name):
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = client[mongo_db_name]
        now = T0
        assert await acquire_lease(db, "crawl:xhs", "run-a", 60, now=now)
        assert not await acquire_lease(
            db, "crawl:xhs", "run-b", 60, now=now + timedelta(seconds=30)
        )
        assert await acquire_lease(db, "crawl:xhs", "run-a", 60, now=now + timedelta(seconds=30))
        assert await renew_lease(db, "crawl:xhs", "run-a", 60, now=now + timedelta(seconds=40))
        # run-a crashed: after the ttl its lease is taken over.
        later = now + timedelta(seconds=101)
        assert await acquire_lease(db, "crawl:xhs", "run-b", 60, now=later)
        doc = await db.leases.find_one({"_id": "crawl:xhs"})
        assert doc["owner"] == "run-b" and doc["acquired_at"] == later
        assert not await renew_lease(db, "crawl:xhs", "run-a", 60, now=later)
        assert not await release_lease(db, "crawl:xhs", "run-a")
        assert await release_lease(db, "crawl:xhs", "run-b")
        assert await acquire_lease(db, "crawl:xhs", "run-c", 60, now=later)
        # Other names are independent.
        assert await acquire_lease(db, "enrich", "run-a", 60, now=later)
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()
