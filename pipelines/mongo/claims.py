"""Claims on notes: which run may spend model requests on a note now (``enrich_claims``).

Two runs that meet the same note (``crawl xhs`` re-crawling a deferred note while
``crawl enrich`` works through the backlog, or several enrich workers) must not both
pay for it. Before a run spends a request on a note it claims the note; a note claimed
by another live run is left alone. A claim expires (``ttl_s``), so a run that dies
(``kill -9``) never holds a note for longer than that; a run that is still working
renews its claims. A claim carries its owner's process (``host``, ``pidns``, ``pid``,
as a run lease does): a claim whose owner is known dead on this host (pid gone or
reused, :func:`pipelines.mongo.leases.holder_dead`) is granted to the next claimer at
once instead of lasting ``ttl_s``.

The claim lives in its own collection, one document per claimed note (the note need
not be stored yet: a note first seen by this crawl is claimed too)::

    {_id: <note id>, owner, claimed_at, renewed_at, expires_at, host, pidns, pid}

API (every call atomic per note; ``now`` is the caller's clock, default UTC now):

- ``await claim(db, note_ids, owner, ttl_s)`` → the ids granted to ``owner`` (free,
  expired, already ``owner``'s, or held by a dead owner); the others are held by
  another live owner.
- ``await renew(db, note_ids, owner, ttl_s)`` → the ids still ``owner``'s, extended.
- ``await release(db, note_ids, owner)`` → how many of ``owner``'s claims were removed.
- ``await held_by_others(db, note_ids, owner)`` → the ids another owner holds now (to
  leave them out of a batch before claiming, e.g. a worker reading the backlog).
- :class:`NoteClaims`: one run's claims with its owner and ttl; ``async with
  claims.holding(note_id) as held:`` claims one note (coalesced with the other notes
  claimed within a few ms: one bulk claim), renews it every ``ttl/3`` while the block
  runs (one renewal for every note held), releases it after the block (batched too;
  ``await claims.close()`` sends the last releases); ``held`` False: another run has it.

A claim only says who may spend *now*: the holder re-checks the enrichment cache
after it got the claim, so a run that claims a note just finished by another run finds
the result there and spends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo import DeleteMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from crawler.core.names import ENRICH_CLAIMS as CLAIMS
from crawler.core.timeutil import utcnow
from pipelines.mongo.leases import holder_dead, this_process

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
    dead: Callable[[Mapping[str, Any]], bool] | None = None,
) -> set[str]:
    """Claim these notes for ``owner`` until now + ``ttl_s``; the ids granted.

    One unordered bulk of upserts whose filter matches only a claim that is expired or
    already ``owner``'s: a live claim of another owner makes the upsert collide on
    ``_id`` (duplicate key), and that note is not granted, unless its owner is dead
    (``dead(claim)``, by default :func:`holder_dead` since ``claimed_at``): then the
    claim is taken over, atomically (only while the dead owner still has it).
    """
    ids = list(dict.fromkeys(note_ids))
    if not ids:
        return set()
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    holder = this_process()
    fields = {
        "owner": owner,
        "claimed_at": now,
        "renewed_at": now,
        "expires_at": expires,
        "host": holder["host"],
        "pidns": holder["pidns"],
        "pid": holder["pid"],
    }
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
    if denied:
        denied -= await _take_over_dead(db, denied, fields, dead or _claim_owner_dead)
    return set(ids) - denied


def _claim_owner_dead(doc: Mapping[str, Any]) -> bool:
    return holder_dead(doc, since="claimed_at")


async def _take_over_dead(
    db: AsyncDatabase,
    note_ids: set[str],
    fields: dict[str, Any],
    dead: Callable[[Mapping[str, Any]], bool],
) -> set[str]:
    """The ids among these whose claim belonged to a dead owner and is ``fields``' now."""
    cursor = db[CLAIMS].find({"_id": {"$in": sorted(note_ids)}})
    stale = [doc async for doc in cursor if doc.get("owner") != fields["owner"] and dead(doc)]
    taken: set[str] = set()
    for doc in stale:
        result = await db[CLAIMS].update_one(
            {"_id": doc["_id"], "owner": doc.get("owner")}, {"$set": fields}
        )
        if result.modified_count == 1:
            taken.add(doc["_id"])
    if taken:
        logger.info("took over %d note claim(s) of dead run(s)", len(taken))
    return taken


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

    Round trips are shared between notes, as the incremental check's lookups are
    (:class:`pipelines.incremental.BatchedLookup`): a claim waits up to ``max_wait_s``
    for others (or until ``batch`` are pending) and goes out with them as one bulk
    claim; a release is queued the same way and not waited for (the note is done: a
    release some ms late only keeps another run off it that long), and :meth:`close`
    sends the last ones; one renewal every ``ttl/3`` extends every claim held. The
    guarantees are the single-note ones: a note is enriched only under a claim the
    database granted; a release never removes a claim this run holds again (a note
    claimed anew waits for its release in flight, and a note held again when its
    release goes out is left out of it); a run killed holding claims frees them at
    expiry. ``enrich/claims/queries`` counts the database calls.

    A database error while claiming is not the note's problem: the note is treated as
    held (counted in ``stats`` as ``enrich/claims/errors``), as a run without MongoDB
    would; the enrichment cache still saves a second request for a result stored.
    """

    def __init__(
        self,
        db: Any,
        owner: str,
        ttl_s: float,
        *,
        stats: Any = None,
        batch: int = 32,
        max_wait_s: float = 0.01,
    ) -> None:
        # Imported here: pipelines.incremental imports pipelines.mongo (this package).
        from pipelines.incremental import BatchedLookup

        self.db = db
        self.owner = owner
        self.ttl_s = ttl_s
        self.stats = stats
        self._claims = BatchedLookup(self._claim_batch, batch=batch, max_wait_s=max_wait_s)
        self._releases = BatchedLookup(self._release_batch, batch=batch, max_wait_s=max_wait_s)
        self._wanted: Counter[str] = Counter()  # note id → holdings asking for or holding it
        self._held: Counter[str] = Counter()  # note id → holdings granted it
        self._releasing: dict[str, asyncio.Task[Any]] = {}
        self._renewing: asyncio.Task[None] | None = None

    def _inc(self, key: str, count: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"enrich/claims/{key}", count)

    @contextlib.asynccontextmanager
    async def holding(self, note_id: str) -> AsyncIterator[bool]:
        """Claim ``note_id`` for the block; yields whether this run holds it."""
        if self.db is None or not note_id:
            yield True
            return
        self._wanted[note_id] += 1
        try:
            releasing = self._releasing.get(note_id)
            if releasing is not None:  # our own release in flight must not undo this claim
                with contextlib.suppress(Exception):
                    await asyncio.shield(releasing)
            try:
                granted = await self._claims.get(note_id) is not None
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
            self._held[note_id] += 1
            self._keep_renewing()
            try:
                yield True
            finally:
                self._held[note_id] -= 1
                if self._held[note_id] <= 0:
                    del self._held[note_id]
                    self._release_later(note_id)
        finally:
            self._wanted[note_id] -= 1
            if self._wanted[note_id] <= 0:
                del self._wanted[note_id]

    async def close(self) -> None:
        """Send the queued releases and wait for them; stop renewing (the end of a run)."""
        pending = list(self._releasing.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._renewing is not None and not self._held:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
            self._renewing = None

    async def _claim_batch(self, note_ids: list[str]) -> list[dict[str, str]]:
        self._inc("queries")
        granted = await claim(self.db, note_ids, self.owner, self.ttl_s)
        return [{"_id": note_id} for note_id in granted]

    async def _release_batch(self, note_ids: list[str]) -> list[dict[str, str]]:
        # A note held again by now stays claimed: its new holding releases it later.
        free = [note_id for note_id in note_ids if note_id not in self._wanted]
        if free:
            self._inc("queries")
            await release(self.db, free, self.owner)
        return []

    def _release_later(self, note_id: str) -> None:
        if note_id in self._releasing:
            return
        task = asyncio.create_task(self._releases.get(note_id))
        self._releasing[note_id] = task

        def forget(done: asyncio.Task[Any]) -> None:
            if self._releasing.get(note_id) is done:
                del self._releasing[note_id]
            if not done.cancelled() and done.exception() is not None:
                self._inc("release_errors")  # the claim lapses at expiry instead

        task.add_done_callback(forget)

    def _keep_renewing(self) -> None:
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        """Every ``ttl/3`` while this run holds notes: one renewal of all of them."""
        while True:
            await asyncio.sleep(max(self.ttl_s / 3, 0.05))
            if not self._held:
                return
            self._inc("queries", 2)
            with contextlib.suppress(Exception):
                await renew(self.db, list(self._held), self.owner, self.ttl_s)
