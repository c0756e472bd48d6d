"""The run lease: the overlap guard between scheduled runs (collection ``leases``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from crawler.core.names import LEASES
from crawler.core.timeutil import utcnow


async def acquire_lease(
    db: AsyncDatabase, name: str, owner: str, ttl_s: float, *, now: datetime | None = None
) -> bool:
    """Take lease ``name`` for ``owner`` until now + ``ttl_s``; ``True`` if held now.

    Atomic: one findOneAndUpdate on ``_id: name`` whose filter matches only a lease
    that is expired or already ours; a live lease of another owner makes the upsert
    collide on ``_id`` (DuplicateKeyError) → ``False``. A crashed run's lease expires
    after ``ttl_s`` and is taken over. Times are the caller's clock (``now``).
    """
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    try:
        doc = await db[LEASES].find_one_and_update(
            {"_id": name, "$or": [{"expires_at": {"$lte": now}}, {"owner": owner}]},
            [
                {
                    "$set": {
                        "owner": {"$literal": owner},
                        "expires_at": expires,
                        "renewed_at": now,
                        "acquired_at": {
                            "$cond": [{"$eq": ["$owner", {"$literal": owner}]}, "$acquired_at", now]
                        },
                    }
                }
            ],
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        return False
    return bool(doc) and doc.get("owner") == owner


async def renew_lease(
    db: AsyncDatabase, name: str, owner: str, ttl_s: float, *, now: datetime | None = None
) -> bool:
    """Extend our lease; ``False`` if it is no longer ours (taken over after expiry)."""
    now = now or utcnow()
    result = await db[LEASES].update_one(
        {"_id": name, "owner": owner},
        {"$set": {"expires_at": now + timedelta(seconds=ttl_s), "renewed_at": now}},
    )
    return result.matched_count == 1


async def release_lease(db: AsyncDatabase, name: str, owner: str) -> bool:
    """Give the lease back (only if still ours); ``True`` if a lease was removed."""
    result = await db[LEASES].delete_one({"_id": name, "owner": owner})
    return result.deleted_count == 1
