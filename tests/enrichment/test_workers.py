"""Several enrich workers on one store: the shared day counts (MongoQuotaLedger, real
Mongo-wire server over TCP) and two clients sharing one 20-RPD project (emulator)."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymongo import AsyncMongoClient

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


async def _ask(client: GeminiClient) -> str:
    await client.generate(
        ["Summarise: hello"], {"type": "object", "properties": {"a": {"type": "string"}}}
    )
    return "ok"
