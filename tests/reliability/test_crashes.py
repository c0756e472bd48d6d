"""Issue 18, defect 4: a dead run never blocks the next one, forced stops exit non-zero,
and what ``JOBDIR`` promises after a hard kill holds.

Before the fix, after ``kill -9`` or a forced stop the lease stopped the same command
for ``RUN_LEASE_TTL`` with exit 3 though its owner was dead, the dead run's
``crawl_runs`` record stayed ``running``, and a rerun with the same ``JOBDIR`` resumed
from half-written state: notes queued but never fetched were skipped as already seen.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from crawler.core.timeutil import utcnow
from pipelines.mongo import acquire_lease, holder_dead, take_over_dead_lease, this_process
from sandbox.harness import run_crawl, sandbox_env, start_crawl
from tests.factories import T0, dead_pid

# --- the lease, against the real Mongo server ----------------------------------------------


async def test_a_dead_holders_lease_is_taken_over_at_once(mongo_uri, mongo_db_name) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = client[mongo_db_name]
    try:
        gone = {**this_process("run-dead", spider="xhs", args={"keywords": "a"}), "pid": dead_pid()}
        now = utcnow()  # real time: a holder started after the lease counts as a reused pid
        assert await acquire_lease(db, "run:xhs:1", "owner-dead", 600, now=now, holder=gone)
        stored = await db.leases.find_one({"_id": "run:xhs:1"})
        assert stored["args"] == {"keywords": "a"} and stored["run_id"] == "run-dead"
        later = now + timedelta(seconds=5)  # long before the lease expires
        assert not await acquire_lease(db, "run:xhs:1", "owner-new", 600, now=later)
        me = this_process("run-new", spider="xhs")
        dead = await take_over_dead_lease(db, "run:xhs:1", "owner-new", 600, now=later, holder=me)
        assert dead is not None and dead["owner"] == "owner-dead"
        lease = await db.leases.find_one({"_id": "run:xhs:1"})
        assert lease["owner"] == "owner-new" and lease["took_over"]["run_id"] == "run-dead"
        # A live holder (this process) is never taken over, even by a run that asks.
        assert await take_over_dead_lease(db, "run:xhs:1", "owner-3", 600, now=later) is None
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()


def test_who_counts_as_dead() -> None:
    me = this_process("r")
    assert not holder_dead(me)  # alive
    assert holder_dead({**me, "pid": dead_pid()})
    assert not holder_dead({**me, "pid": dead_pid(), "host": "another-host"})  # not judged
    assert not holder_dead({**me, "pid": dead_pid(), "pidns": 1})  # another container
    assert not holder_dead({"owner": "legacy"})  # no pid: wait for the expiry
    legacy = {"owner": f"{me['host']}:{dead_pid()}:run-x"}  # the owner string of old leases
    assert holder_dead(legacy)
    reused = {**me, "acquired_at": T0}
    assert holder_dead(reused, started_after=lambda pid, moment: True)  # the pid was reused
    assert not holder_dead(reused, started_after=lambda pid, moment: False)


# --- real crawls -----------------------------------------------------------------------------

STORAGE_ONLY = json.dumps(
    {
        "pipelines.incremental.IncrementalPipeline": 100,
        "pipelines.storage.MongoStoragePipeline": 400,
    }
)


def _ids(site, count: int) -> tuple[str, int]:
    notes = [site.dataset.note(i) for i in range(count)]
    live = count - len(set(site.dataset.deleted_ids(range(count))))
    return ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes), live


def _wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_after_kill_9_the_same_command_runs_at_once_and_loses_no_note(
    make_site, mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
) -> None:
    """300 notes, kill -9 halfway, the same command at once, same JOBDIR. Before the
    fix: exit 3 for RUN_LEASE_TTL (600 s); once the lease had expired, about a third of
    the notes were never stored (skipped as seen by the half-written JOBDIR)."""
    site = make_site(notes=350)
    ids, live = _ids(site, 300)
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, ENRICH_BACKEND="off")
    settings = {"JOBDIR": str(tmp_path / "job"), "DOWNLOAD_DELAY": "0.02",
                "ITEM_PIPELINES": STORAGE_ONLY}  # fmt: skip
    args = {"note_ids": ids}
    with start_crawl("xhs", args, env, workdir=tmp_path, label="a", settings=settings) as first:
        _wait_for(lambda: site.stats().get("note_ok", 0) >= 150)
        first.proc.kill()
        assert first.wait(timeout=30).returncode == -signal.SIGKILL
    dead_run = mongo_sync.crawl_runs.find_one({"status": "running"})
    assert dead_run is not None and mongo_sync.leases.count_documents({}) == 1
    second = run_crawl("xhs", args, env, workdir=tmp_path, label="b", settings=settings,
                       timeout=300)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stats.get("run_lease/taken_over") == 1
    assert "set aside" in second.stderr
    assert mongo_sync.notes.count_documents({}) == live  # no note lost
    closed = mongo_sync.crawl_runs.find_one({"_id": dead_run["_id"]})
    assert closed["status"] == "crashed" and closed["closed_by"] == second.stats["run_id"]
    assert mongo_sync.leases.count_documents({}) == 0


@pytest.mark.slow
def test_a_forced_stop_exits_non_zero_and_blocks_nothing(
    make_site, mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
) -> None:
    site = make_site()
    ids, live = _ids(site, 60)
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, ENRICH_BACKEND="off")
    settings = {"DOWNLOAD_DELAY": "0.1", "ITEM_PIPELINES": STORAGE_ONLY}
    args = {"note_ids": ids}
    with start_crawl("xhs", args, env, workdir=tmp_path, label="a", settings=settings) as first:
        _wait_for(lambda: site.stats().get("note_ok", 0) >= 5)
        first.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        first.proc.send_signal(signal.SIGTERM)  # twice: Scrapy's forced, unclean stop
        forced = first.wait(timeout=60)
    assert "forcing unclean shutdown" in forced.stderr, forced.stderr[-2000:]
    assert forced.returncode == 1  # not 0: the run did not end as it should
    second = run_crawl("xhs", args, env, workdir=tmp_path, label="b", settings=settings,
                       timeout=300)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert mongo_sync.notes.count_documents({}) == live
    assert mongo_sync.crawl_runs.count_documents({"status": "running"}) == 0
