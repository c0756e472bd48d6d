"""BacklogClaims: the due backlog, handed out to one enrich worker in claimed batches.

Several ``scrapy crawl enrich`` processes (``-a worker=NAME``, on one machine or
several) share one store. Each reads the notes :func:`backlog_query` selects, claims a
batch (:func:`pipelines.mongo.claims.claim`: atomic per note, with an expiry), reads
the granted notes again (a note another worker finished meanwhile is no longer due)
and hands them over. Claims are renewed every ``ttl / 3`` and released when the worker
closes, after its storage flushed, so a note another worker is still writing is never
taken again. A worker killed with ``kill -9`` stops renewing: on its host its claims are
taken over at once (its pid is gone: :func:`pipelines.mongo.leases.holder_dead`, as
:func:`~pipelines.mongo.claims.claim` judges them), elsewhere they lapse after ``ttl``
and the others take its notes then.

A worker claims its next batch only when fewer than ``batch`` of its notes are still in
the pipelines (:meth:`done` counts them out), so the backlog spreads over the workers
that are running. With ``wait_for_others`` it stays while notes that are due are held
by other workers (they may die) and gives up after ``idle_limit`` seconds in which
nothing it could claim came free; without it, it ends once nothing due is claimable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from crawler.core.enrichment_state import backlog_query
from crawler.core.names import NOTES
from crawler.core.timeutil import utcnow
from pipelines.mongo.claims import CLAIMS, claim, release, renew
from pipelines.mongo.leases import holder_dead

logger = logging.getLogger(__name__)


class BacklogClaims:
    def __init__(
        self,
        db: Any,
        owner: str,
        *,
        ttl: float,
        batch: int,
        include_local: bool = False,
        wait_for_others: bool = False,
        poll: float = 1.0,
        idle_limit: float | None = None,
        limit: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.owner = owner
        self.ttl = ttl
        self.batch = max(batch, 1)
        self.include_local = include_local
        self.wait_for_others = wait_for_others
        self.poll = poll
        self.idle_limit = idle_limit if idle_limit is not None else 2 * ttl + 5 * poll
        self.limit = limit
        self.clock = clock
        self.sleep = sleep
        self.held: set[str] = set()  # every note claimed by this worker (released at close)
        self.in_progress = 0
        self.claimed = 0
        self._renewing: asyncio.Task[None] | None = None

    def done(self) -> None:
        """One of the notes handed out left the pipelines."""
        self.in_progress = max(self.in_progress - 1, 0)

    async def due_count(self) -> int:
        query = backlog_query(self.clock(), include_local=self.include_local)
        return await self.db[NOTES].count_documents(query)

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Claimed batches of due note documents until the backlog is done (for us)."""
        if self._renewing is None:
            self._renewing = asyncio.get_running_loop().create_task(self._renew())
        idle_since: float | None = None
        while self.limit is None or self.claimed < self.limit:
            while self.in_progress >= self.batch:
                await self.sleep(min(self.poll, 0.2))
            want = self.batch if self.limit is None else min(self.batch, self.limit - self.claimed)
            free, busy = await self._candidates(want)
            if not free and not busy:
                return  # nothing due but what this worker already has
            granted = await claim(self.db, free, self.owner, self.ttl)
            granted_ids = [i for i in free if i in granted]
            docs = await self._still_due(granted_ids)
            self.held.update(granted_ids)
            if docs:
                idle_since = None
                self.claimed += len(docs)
                self.in_progress += len(docs)
                yield docs
                continue
            if free:
                continue  # lost a race for these, or they were just finished: look again
            if not self.wait_for_others:
                return
            now = self.clock().timestamp()
            idle_since = idle_since if idle_since is not None else now
            if now - idle_since > self.idle_limit:
                logger.info(
                    "enrich worker %s: %d due note(s) stay claimed by other workers; stopping",
                    self.owner,
                    busy,
                )
                return
            await self.sleep(self.poll)

    async def _candidates(self, want: int) -> tuple[list[str], int]:
        """Up to ``want`` due notes nobody alive holds (in id order), and how many due
        notes other live workers hold now. A claim of a dead owner counts as free:
        :func:`claim` takes it over."""
        now = self.clock()
        others = self.db[CLAIMS].find(
            {"owner": {"$ne": self.owner}, "expires_at": {"$gt": now}},
            {"host": 1, "pidns": 1, "pid": 1, "claimed_at": 1},
        )
        taken = {doc["_id"] async for doc in others if not holder_dead(doc, since="claimed_at")}
        due = backlog_query(now, include_local=self.include_local)
        free_query = {"$and": [due, {"_id": {"$nin": sorted(taken | self.held)}}]}
        cursor = self.db[NOTES].find(free_query, {"_id": 1}).sort("_id", 1).limit(want)
        free = [doc["_id"] async for doc in cursor]
        busy = 0
        if taken and not free:
            busy = await self.db[NOTES].count_documents(
                {"$and": [due, {"_id": {"$in": sorted(taken)}}]}
            )
        return free, busy

    async def _still_due(self, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        query = backlog_query(self.clock(), include_local=self.include_local)
        cursor = self.db[NOTES].find({"$and": [{"_id": {"$in": ids}}, query]}).sort("_id", 1)
        return [doc async for doc in cursor]

    async def _renew(self) -> None:
        while True:
            await self.sleep(max(self.ttl / 3, 0.05))
            if self.held:
                try:
                    await renew(self.db, self.held, self.owner, self.ttl)
                except Exception as exc:  # the store is down: the claims may lapse
                    logger.warning("enrich worker %s: claims not renewed (%s)", self.owner, exc)

    async def close(self) -> None:
        """Stop renewing and give every claim back."""
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
            self._renewing = None
        if self.held:
            with contextlib.suppress(Exception):
                await release(self.db, self.held, self.owner)
