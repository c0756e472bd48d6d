"""Several enrich workers on one store: the shared day counts (MongoQuotaLedger, real
Mongo-wire server over TCP), two clients sharing one 20-RPD project (emulator), and
the backlog handed out in claimed batches (BacklogClaims), a dead worker's claims
lapsing, and the per-minute window in a real Redis (RedisMinuteWindow)."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymongo import AsyncMongoClient

from crawler.core.names import ENRICH_CLAIMS as CLAIMS
from crawler.core.names import NOTES
from crawler.extensions.lease import lease_key
from crawler.spiders.enrich import EnrichSpider
from pipelines.enrichment.backlog import BacklogClaims
from pipelines.enrichment.minute_window import SPAN, RedisMinuteWindow
from pipelines.gemini import GeminiClient, GeminiSettings, QuotaDeferred, next_pacific_midnight
from pipelines.mongo import MongoQuotaLedger

PROJECT, MODEL = "proj-a", "gemini-2.5-flash-lite"


@pytest.fixture
async def db(mongo_uri: str, mongo_db_name: str):
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    yield client[mongo_db_name]
    await client.drop_database(mongo_db_name)
    await client.close()


async def test_concurrent_reserves_never_pass_the_limit(db) -> None:
    ledgers = [MongoQuotaLedger(db) for _ in range(3)]  # three workers, one store
    now = time.time()
    grants = await asyncio.gather(
        *(ledgers[i % 3].reserve(PROJECT, MODEL, now, 20) for i in range(45))
    )
    assert sum(g.granted for g in grants) == 20
    assert max(g.count for g in grants if g.granted) == 20
    assert all(g.count == 20 for g in grants if not g.granted)
    # A refunded request (the server said 429) can be taken again, once.
    await ledgers[0].refund(PROJECT, MODEL, now)
    again = await asyncio.gather(*(ledgers[1].reserve(PROJECT, MODEL, now, 20) for _ in range(3)))
    assert [g.granted for g in again].count(True) == 1


async def test_a_learned_limit_and_a_block_reach_every_worker(db) -> None:
    now = time.time()
    first, second = MongoQuotaLedger(db), MongoQuotaLedger(db)
    assert (await first.reserve(PROJECT, MODEL, now, None)).granted  # limit unknown
    await first.block(PROJECT, MODEL, now, next_pacific_midnight(now), 20)
    grant = await second.reserve(PROJECT, MODEL, now, None)
    assert not grant.granted and grant.limit == 20
    assert grant.blocked_until == pytest.approx(next_pacific_midnight(now), abs=0.01)
    # Another day is another document.
    tomorrow = next_pacific_midnight(now) + 60
    assert (await second.reserve(PROJECT, MODEL, tomorrow, 20)).granted


async def test_two_clients_share_one_daily_quota(db, make_gemini_emulator) -> None:
    """Two workers' clients (each its own limiter) against one 20-RPD project send 20
    requests in total; the rest is deferred for the day without a 429."""
    config = {"projects": {PROJECT: {"keys": ["key-a1"], "limits": {MODEL: {"rpd": 20}}}}}
    emu = make_gemini_emulator(config)
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": f"{PROJECT}:key-a1",
            "GEMINI_MODELS": MODEL,
            "GEMINI_BASE_URL": emu.base_url,
            "GEMINI_LIMITS": f"{MODEL}:rpd=20",
        }
    )
    clients = [GeminiClient(settings, ledger=MongoQuotaLedger(db)) for _ in range(2)]
    for client in clients:
        await client.start()
    outcomes = await asyncio.gather(
        *(_ask(clients[i % 2]) for i in range(30)), return_exceptions=True
    )
    for client in clients:
        await client.close()
    ok = [o for o in outcomes if o == "ok"]
    deferred = [o for o in outcomes if isinstance(o, QuotaDeferred)]
    assert len(ok) == 20 and len(deferred) == 10, outcomes
    assert all(d.reason == "daily_quota_exhausted" for d in deferred)
    statuses = [r.status for r in emu.requests if r.method == "generateContent"]
    assert statuses.count(200) == 20 and 429 not in statuses
    assert all(c.remaining_today() == 0 for c in clients)


async def test_blocks_reserved_by_racing_workers_never_pass_the_limit(db) -> None:
    """Blocks of several requests, reserved by three workers at once: whole or not at
    all, and the counts granted never pass the limit."""
    ledgers = [MongoQuotaLedger(db) for _ in range(3)]
    now = time.time()
    sizes = [16, 8, 1, 5] * 12  # 360 asked for, 100 in the day
    grants = await asyncio.gather(
        *(ledgers[i % 3].reserve(PROJECT, MODEL, now, 100, n) for i, n in enumerate(sizes))
    )
    granted = sum(n for n, g in zip(sizes, grants, strict=True) if g.granted)
    assert granted <= 100 and granted >= 100 - 15  # what is left is smaller than a 16-block
    (doc,) = await ledgers[0].day_documents()
    assert doc["count"] == granted
    await ledgers[1].refund(PROJECT, MODEL, now, granted - 3)  # unused blocks given back
    (doc,) = await ledgers[0].day_documents()
    assert doc["count"] == 3


async def test_three_clients_share_a_larger_daily_quota_in_blocks(db, make_gemini_emulator) -> None:
    """Three workers' clients against one 200-RPD project: 200 requests sent in total,
    the rest deferred without a 429, in far fewer ledger round trips than requests;
    after close the shared count is the requests sent (unused blocks given back)."""
    config = {"projects": {PROJECT: {"keys": ["key-a1"], "limits": {MODEL: {"rpd": 200}}}}}
    emu = make_gemini_emulator(config)
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": f"{PROJECT}:key-a1",
            "GEMINI_MODELS": MODEL,
            "GEMINI_BASE_URL": emu.base_url,
            "GEMINI_LIMITS": f"{MODEL}:rpd=200,rpm=100000",
            "GEMINI_MAX_IN_FLIGHT": "16",
        }
    )
    ledger = MongoQuotaLedger(db)
    clients = [GeminiClient(settings, ledger=MongoQuotaLedger(db)) for _ in range(3)]
    for client in clients:
        await client.start()
    outcomes = await asyncio.gather(
        *(_ask(clients[i % 3]) for i in range(230)), return_exceptions=True
    )
    reserves = sum(c.stats["shared_day/reserves"] for c in clients)
    for client in clients:
        await client.close()
    ok = [o for o in outcomes if o == "ok"]
    assert len(ok) == 200, [o for o in outcomes if o != "ok"][:3]
    assert all(isinstance(o, QuotaDeferred) for o in outcomes if o != "ok")
    statuses = [r.status for r in emu.requests if r.method == "generateContent"]
    assert statuses.count(200) == 200 and 429 not in statuses
    assert 0 < reserves < 100, reserves  # 200 one by one before the blocks
    (doc,) = await ledger.day_documents()
    assert doc["count"] == 200


async def test_unused_reservations_go_back_at_close(db, make_gemini_emulator) -> None:
    """The limit unknown: a block is reserved for the first request; three sent, the
    rest of the block is given back when the client closes."""
    config = {"projects": {PROJECT: {"keys": ["key-a1"]}}}
    emu = make_gemini_emulator(config)
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": f"{PROJECT}:key-a1",
            "GEMINI_MODELS": MODEL,
            "GEMINI_BASE_URL": emu.base_url,
        }
    )
    ledger = MongoQuotaLedger(db)
    client = GeminiClient(settings, ledger=ledger)
    await client.start()
    for _ in range(3):
        await _ask(client)
    (doc,) = await ledger.day_documents()
    assert doc["count"] > 3  # the block in hand counts
    assert client.stats["shared_day/reserves"] == 1
    await client.close()
    (doc,) = await ledger.day_documents()
    assert doc["count"] == 3


async def _ask(client: GeminiClient) -> str:
    await client.generate(
        ["Summarise: hello"], {"type": "object", "properties": {"a": {"type": "string"}}}
    )
    return "ok"


# -- claims on the backlog ---------------------------------------------------------------


async def _store_backlog(db, count: int) -> list[str]:
    ids = [f"note{i:04d}" for i in range(count)]
    await db[NOTES].insert_many([{"_id": i, "note_id": i, "title": i} for i in ids])
    return ids


async def _finish(db, docs) -> None:
    """What storage does with an enriched note: it is no longer due."""
    await db[NOTES].update_many(
        {"_id": {"$in": [d["_id"] for d in docs]}},
        {"$set": {"enrichment": {"status": "done", "backend": "gemini"}}},
    )


async def _work(claims: BacklogClaims, db, taken: list[str], *, pause: float = 0.0) -> None:
    async for docs in claims.batches():
        taken.extend(d["_id"] for d in docs)
        await asyncio.sleep(pause)
        await _finish(db, docs)
        for _ in docs:
            claims.done()
    await claims.close()


async def test_workers_split_the_backlog_without_overlap(db) -> None:
    ids = await _store_backlog(db, 100)
    workers = [BacklogClaims(db, f"w{i}", ttl=30, batch=8) for i in range(3)]
    taken: list[list[str]] = [[], [], []]
    await asyncio.gather(
        *(_work(w, db, t, pause=0.02) for w, t in zip(workers, taken, strict=True))
    )
    every = [i for t in taken for i in t]
    assert sorted(every) == ids  # each note handed out exactly once
    assert sum(1 for t in taken if t) >= 2
    assert await db[CLAIMS].count_documents({}) == 0  # released at close


async def test_a_dead_workers_claims_lapse_and_another_takes_its_notes(db) -> None:
    ids = await _store_backlog(db, 30)
    dead = BacklogClaims(db, "dead", ttl=1.0, batch=10)
    held = await anext(dead.batches())  # claimed 10 notes, then "kill -9": never renews
    assert dead._renewing is not None
    dead._renewing.cancel()
    alive = BacklogClaims(db, "alive", ttl=1.0, batch=10, wait_for_others=True, poll=0.2)
    taken: list[str] = []
    started = time.monotonic()
    await _work(alive, db, taken)
    assert sorted(taken) == ids  # its own 20, then the dead worker's 10 once they lapsed
    assert set(taken[-10:]) == {d["_id"] for d in held}
    assert time.monotonic() - started >= 1.0


async def test_the_claims_of_a_worker_whose_process_died_are_taken_over_at_once(db) -> None:
    """Issue 18: a worker killed with -9 on this host held its notes for the whole claim
    ttl (the backlog left them out before claiming); its pid is gone, so the next worker
    takes them at once."""
    import subprocess
    import sys

    ids = await _store_backlog(db, 12)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = BacklogClaims(db, "dead", ttl=300, batch=5)
    held = await anext(dead.batches())
    assert dead._renewing is not None
    dead._renewing.cancel()
    await db[CLAIMS].update_many({"owner": "dead"}, {"$set": {"pid": gone.pid}})
    alive = BacklogClaims(db, "alive", ttl=300, batch=5, wait_for_others=True, poll=0.2)
    taken: list[str] = []
    started = time.monotonic()
    await asyncio.wait_for(_work(alive, db, taken), timeout=30)
    assert sorted(taken) == ids  # the dead worker's 5 too, long before their ttl
    assert {d["_id"] for d in held} <= set(taken)
    assert time.monotonic() - started < 30


# -- the per-minute window in Redis -------------------------------------------------------


async def test_the_redis_minute_window_admits_rpm_requests_across_workers(redis_url) -> None:
    windows = [RedisMinuteWindow.from_url(redis_url) for _ in range(2)]
    now = time.time()
    answers = await asyncio.gather(
        *(windows[i % 2].admit("p-window", MODEL, now, 3) for i in range(5))
    )
    assert sorted(answers)[:3] == [0.0, 0.0, 0.0]
    assert sorted(answers)[3:] == pytest.approx([now + SPAN] * 2, abs=0.01)
    assert await windows[1].admit("p-window", MODEL, now + SPAN + 0.1, 3) == 0.0
    for window in windows:
        await window.close()


async def test_two_clients_share_one_minute_window(redis_url, make_gemini_emulator) -> None:
    """rpm=3 known to both: 3 requests go in the minute, the others wait (here: defer,
    GEMINI_MAX_WAIT=1) instead of running into 429s."""
    project = "proj-rpm"
    config = {"projects": {project: {"keys": ["key-r1"], "limits": {MODEL: {"rpm": 3}}}}}
    emu = make_gemini_emulator(config)
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": f"{project}:key-r1",
            "GEMINI_MODELS": MODEL,
            "GEMINI_BASE_URL": emu.base_url,
            "GEMINI_LIMITS": f"{MODEL}:rpm=3",
            "GEMINI_MAX_WAIT": "1",
        }
    )
    windows = [RedisMinuteWindow.from_url(redis_url) for _ in range(2)]
    clients = [GeminiClient(settings, window=w) for w in windows]
    for client in clients:
        await client.start()
    outcomes = await asyncio.gather(
        *(_ask(clients[i % 2]) for i in range(6)), return_exceptions=True
    )
    for client, window in zip(clients, windows, strict=True):
        await client.close()
        await window.close()
    assert outcomes.count("ok") == 3, outcomes
    assert all(isinstance(o, QuotaDeferred) for o in outcomes if o != "ok")
    statuses = [r.status for r in emu.requests if r.method == "generateContent"]
    assert statuses == [200, 200, 200]  # no 429: the window said no first


# -- the spider argument ------------------------------------------------------------------


def test_a_worker_has_its_own_lease_key_and_a_checked_name() -> None:
    scheduled, w1, w1_again = EnrichSpider(), EnrichSpider(worker="w1"), EnrichSpider(worker="w1")
    assert lease_key(w1) == lease_key(w1_again) != lease_key(scheduled)
    assert lease_key(scheduled) == lease_key(EnrichSpider(worker=""))
    with pytest.raises(ValueError, match="worker="):
        EnrichSpider(worker="w 1; rm")
