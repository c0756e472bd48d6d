"""Claims on notes: which run may spend model requests on a note now (``enrich_claims``).

Two runs that meet the same note (``crawl xhs`` re-crawling a deferred note while
``crawl enrich`` works through the backlog, or several enrich workers) must not both
pay for it. Before a run spends a request on a note it claims the note; a note claimed
by another live run is left alone. A claim expires (``ttl_s``), so a run that dies
(``kill -9``) never holds a note for longer than that; a run that is still working
renews its claims.

The claim lives in its own collection, one document per claimed note (the note need
not be stored yet: a note first seen by this crawl is claimed too)::

    {_id: <note id>, owner, claimed_at, renewed_at, expires_at}

API (every call atomic per note; ``now`` is the caller's clock, default UTC now):

- ``await claim(db, note_ids, owner, ttl_s)`` → the ids granted to ``owner`` (free,
  expired, or already ``owner``'s); the others are held by another live owner.
- ``await renew(db, note_ids, owner, ttl_s)`` → the ids still ``owner``'s, extended.
- ``await release(db, note_ids, owner)`` → how many of ``owner``'s claims were removed.
- ``await held_by_others(db, note_ids, owner)`` → the ids another owner holds now (to
  leave them out of a batch before claiming, e.g. a worker reading the backlog).
- :class:`NoteClaims`: one run's claims with its owner and ttl; ``async with
  claims.holding(note_id) as held:`` claims one note, renews it every ``ttl/3`` while
  the block runs, releases it at the end (``held`` False: another run has it).

A claim only says who may spend *now*: the holder re-checks the enrichment cache
after it got the claim, so a run that claims a note just finished by another run finds
the result there and spends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo import DeleteMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from crawler.core.names import ENRICH_CLAIMS as CLAIMS
from crawler.core.timeutil import utcnow

__all__ = ["CLAIMS", "NoteClaims", "claim", "held_by_others", "release", "renew"]

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000


async def claim(
    db: AsyncDatabase,
    note_ids: Iterable[str],
    owner: str,
    ttl_s: float,
    *,
    now: datetime | None = None,
) -> set[str]:
    """Claim these notes for ``owner`` until now + ``ttl_s``; the ids granted.

    One unordered bulk of upserts whose filter matches only a claim that is expired or
    already ``owner``'s: a live claim of another owner makes the upsert collide on
    ``_id`` (duplicate key), and that note is not granted.
    """
    ids = list(dict.fromkeys(note_ids))
    if not ids:
        return set()
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    fields = {"owner": owner, "claimed_at": now, "renewed_at": now, "expires_at": expires}
    operations = [
        UpdateOne(
            {"_id": note_id, "$or": [{"expires_at": {"$lte": now}}, {"owner": owner}]},
            {"$set": fields},
            upsert=True,
        )
        for note_id in ids
    ]
    denied: set[str] = set()
    try:
        await db[CLAIMS].bulk_write(operations, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if others:
            raise
        denied = {ids[e["index"]] for e in errors}
    return set(ids) - denied


async def renew(
    db: AsyncDatabase,
    note_ids: Iterable[str],
    owner: str,
    ttl_s: float,
    *,
    now: datetime | None = None,
) -> set[str]:
    """Extend ``owner``'s claims on these notes; the ids still ``owner``'s."""
    ids = list(dict.fromkeys(note_ids))
    if not ids:
        return set()
    now = now or utcnow()
    await db[CLAIMS].update_many(
        {"_id": {"$in": ids}, "owner": owner},
        {"$set": {"renewed_at": now, "expires_at": now + timedelta(seconds=ttl_s)}},
    )
    cursor = db[CLAIMS].find({"_id": {"$in": ids}, "owner": owner}, {"_id": 1})
    return {doc["_id"] async for doc in cursor}


async def release(db: AsyncDatabase, note_ids: Iterable[str], owner: str) -> int:
    """Remove ``owner``'s claims on these notes (others' claims stay); how many."""
    ids = list(dict.fromkeys(note_ids))
    if not ids:
        return 0
    result = await db[CLAIMS].bulk_write([DeleteMany({"_id": {"$in": ids}, "owner": owner})])
    return result.deleted_count


async def held_by_others(
    db: AsyncDatabase, note_ids: Iterable[str], owner: str, *, now: datetime | None = None
) -> set[str]:
    """The ids among these that another owner holds a live claim on now."""
    ids = list(dict.fromkeys(note_ids))
    if not ids:
        return set()
    now = now or utcnow()
    cursor = db[CLAIMS].find(
        {"_id": {"$in": ids}, "owner": {"$ne": owner}, "expires_at": {"$gt": now}}, {"_id": 1}
    )
    return {doc["_id"] async for doc in cursor}


class NoteClaims:
    """One run's claims: its ``owner`` name and ``ttl_s``, on ``db`` (None: no claims,
    every note is held at once: a run without MongoDB cannot coordinate).

    A database error while claiming is not the note's problem: the note is treated as
    held (counted in ``stats`` as ``enrich/claims/errors``), as a run without MongoDB
    would; the enrichment cache still saves a second request for a result stored.
    """

    def __init__(self, db: Any, owner: str, ttl_s: float, *, stats: Any = None) -> None:
        self.db = db
        self.owner = owner
        self.ttl_s = ttl_s
        self.stats = stats

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"enrich/claims/{key}")

    @contextlib.asynccontextmanager
    async def holding(self, note_id: str) -> AsyncIterator[bool]:
        """Claim ``note_id`` for the block; yields whether this run holds it."""
        if self.db is None or not note_id:
            yield True
            return
        try:
            granted = note_id in await claim(self.db, [note_id], self.owner, self.ttl_s)
        except Exception as exc:  # the database is down: go on unclaimed
            self._inc("errors")
            logger.warning("claim on note %s not taken (%s): going on", note_id, exc)
            yield True
            return
        if not granted:
            self._inc("held_elsewhere")
            yield False
            return
        self._inc("granted")
        renewing = asyncio.create_task(self._renew(note_id))
        try:
            yield True
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            with contextlib.suppress(Exception):
                await release(self.db, [note_id], self.owner)

    async def _renew(self, note_id: str) -> None:
        while True:
            await asyncio.sleep(max(self.ttl_s / 3, 0.05))
            with contextlib.suppress(Exception):
                await renew(self.db, [note_id], self.owner, self.ttl_s)
