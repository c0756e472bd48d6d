"""Claims on notes (pipelines/mongo/claims.py) against the real Mongo-wire server."""

from __future__ import annotations

import asyncio
import os
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
        await mine.close()  # the batched release of n1 has gone out
        async with theirs.holding("n1") as other:
            assert other
        await theirs.close()
        assert await db[CLAIMS].count_documents({}) == 0
        async with NoteClaims(None, "run-3", 1).holding("n1") as held:
            assert held  # no database: nothing to coordinate with
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()


class Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


async def test_concurrent_claims_share_round_trips_and_never_overlap(
    mongo_uri, mongo_db_name
) -> None:
    """100 notes, two runs claiming all of them at once: a note is never held by both
    runs at the same time (on a loaded machine the second run's claim may come after the
    first's release: that is a second turn, which the cache then answers, not an
    overlap), and a run's 100 claims and releases go out in a handful of bulk calls."""
    client, db = await _db(mongo_uri, mongo_db_name)
    stats = [Stats(), Stats()]
    runs = [NoteClaims(db, f"run-{i}", 60, stats=stats[i]) for i in range(2)]
    ids = [f"n{i:03d}" for i in range(100)]
    holding_now: dict[str, set[int]] = {i: set() for i in ids}
    turns: dict[str, list[int]] = {i: [] for i in ids}
    overlaps: list[str] = []

    async def enrich(run: int, note_id: str) -> None:
        async with runs[run].holding(note_id) as held:
            if held:
                if holding_now[note_id]:
                    overlaps.append(note_id)
                holding_now[note_id].add(run)
                turns[note_id].append(run)
                await asyncio.sleep(0.05)
                holding_now[note_id].discard(run)

    try:
        await asyncio.gather(*(enrich(r, i) for i in ids for r in (0, 1)))
        for run in runs:
            await run.close()
        assert not overlaps, overlaps
        assert all(turns.values()), turns  # every note was held by someone
        assert await db[CLAIMS].count_documents({}) == 0  # every claim released
        for s in stats:
            # 100 claims at once: batches of 32 (4 calls), releases likewise
            assert s.values["enrich/claims/queries"] <= 10, s.values
        granted = sum(s.values.get("enrich/claims/granted", 0) for s in stats)
        assert granted == sum(len(t) for t in turns.values())
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()


async def test_a_note_claimed_again_keeps_its_claim_past_its_release(
    mongo_uri, mongo_db_name
) -> None:
    """The release queued when a note's first holding ends never removes the claim of
    its next holding in the same run (claimed again within the release's wait)."""
    client, db = await _db(mongo_uri, mongo_db_name)
    mine, theirs = NoteClaims(db, "run-1", 60), NoteClaims(db, "run-2", 60)
    try:
        async with mine.holding("n1") as held:
            assert held
        async with mine.holding("n1") as held:  # its release is still queued
            assert held
            await asyncio.sleep(0.1)  # the queued release has had its turn
            async with theirs.holding("n1") as other:
                assert not other  # still ours
        await mine.close()
        assert await db[CLAIMS].count_documents({}) == 0
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()


async def test_a_claim_of_a_dead_run_is_taken_over_at_once(mongo_uri, mongo_db_name) -> None:
    """Issue 18 (chaos run): a run killed with -9 held its notes' claims for the whole
    ENRICH_CLAIM_TTL, so the next crawl left them pending/claimed_elsewhere. A claim of
    an owner whose pid is gone on this host is granted to the next claimer at once; a
    claim of a live owner, or of another host, still holds."""
    import socket
    import subprocess
    import sys

    from pipelines.mongo.leases import pid_namespace

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    client, db = await _db(mongo_uri, mongo_db_name)
    now = utcnow()
    holder = {"host": socket.gethostname(), "pidns": pid_namespace(), "claimed_at": now}
    until = now + timedelta(seconds=300)
    try:
        await db[CLAIMS].insert_many(
            [
                {"_id": "dead", "owner": "killed", "pid": gone.pid, "expires_at": until, **holder},
                {"_id": "live", "owner": "alive", "pid": os.getpid(), "expires_at": until, **holder},
                {**{"_id": "far", "owner": "elsewhere", "pid": gone.pid, "expires_at": until},
                 **holder, "host": "another-host"},
            ]
        )  # fmt: skip
        granted = await claim(db, ["dead", "live", "far"], "next-run", 300, now=now)
        assert granted == {"dead"}
        doc = await db[CLAIMS].find_one({"_id": "dead"})
        assert doc["owner"] == "next-run" and doc["pid"] == os.getpid()
        async with NoteClaims(db, "third-run", 300).holding("dead") as held:
            assert not held  # the new owner is alive: its claim holds
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()
