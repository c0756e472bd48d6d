"""pipelines/gemini/shared_books.py: requests booked in the shared day count (the Mongo
quota ledger on the real Mongo-wire server over TCP) in blocks, then in the shared minute
window (a real redis-server), refunds into the block in hand, blocks given back at
close and on a per-day 429, a store that is down, and no shared books at all."""

from __future__ import annotations

import logging
import socket
import uuid
from collections import Counter
from datetime import datetime

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from crawler.core.names import GEMINI_QUOTA
from pipelines.enrichment.minute_window import SPAN, RedisMinuteWindow
from pipelines.gemini import ApiKey, ModelLimits, QuotaState, next_pacific_midnight
from pipelines.gemini.call import Pick
from pipelines.gemini.shared_books import BLOCK_HEADROOM, BLOCK_MAX, SharedBooks, block_size
from pipelines.gemini.state import MinuteWindow, QuotaLedger
from pipelines.mongo import MongoQuotaLedger
from tests.gemini_client.helpers import KEY_A1, LITE, START

NOW = datetime.fromisoformat(START).timestamp()
PROJECT = "projA"


class Worker:
    """One process's side: its own quota book and limiter, the shared books."""

    def __init__(
        self,
        ledger: QuotaLedger | None,
        window: MinuteWindow | None = None,
        project: str = PROJECT,
        **limits: int,
    ) -> None:
        self.state = QuotaState({LITE: ModelLimits(**limits)})
        self.stats: Counter[str] = Counter()
        self.books = SharedBooks(ledger, window, self.state, self.stats, lambda exc: str(exc))
        self.pick = Pick(LITE, project, ApiKey(project, KEY_A1), self.state.limiter(project, LITE))

    async def send(self, at: float = NOW) -> bool:
        """Book one request as the client does: in its own limiter, then the shared books."""
        self.pick.limiter.record(at, 10)
        return await self.books.admit(self.pick, at, 10)


async def _shared_count(db: AsyncDatabase, project: str = PROJECT) -> int:
    doc = await db[GEMINI_QUOTA].find_one({"project": project, "model": LITE})
    return int((doc or {}).get("count") or 0)


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_block_size_shrinks_with_what_the_day_has_left() -> None:
    assert block_size(None, 0) == block_size(None, 10_000) == BLOCK_MAX
    assert block_size(1000, 0) == BLOCK_MAX
    assert block_size(1000, 1000 - 10 * BLOCK_HEADROOM) == 10
    assert block_size(1000, 1000 - 2 * BLOCK_HEADROOM) == 2
    assert block_size(1000, 1000 - 2 * BLOCK_HEADROOM + 1) == 1
    assert block_size(1000, 1000) == 1  # never zero: the ledger refuses it
    assert {block_size(20, count) for count in range(21)} == {1}  # a 20-RPD project


async def test_without_shared_books_only_the_own_limiter_counts() -> None:
    worker = Worker(None, None, rpm=1)
    assert [await worker.send() for _ in range(3)] == [True, True, True]
    await worker.books.refund(worker.pick, NOW)
    await worker.books.block_day(worker.pick, NOW, next_pacific_midnight(NOW), 20)
    await worker.books.close()
    assert worker.pick.limiter.day_count == 3  # the books never touch the own counts here
    assert worker.stats == Counter()


async def test_one_reservation_serves_a_block_and_close_gives_the_rest_back(db) -> None:
    worker = Worker(MongoQuotaLedger(db), rpd=1000)
    assert all([await worker.send() for _ in range(5)])
    assert worker.stats["shared_day/reserves"] == 1
    assert await _shared_count(db) == BLOCK_MAX  # counted before sent, ahead by the block
    assert worker.pick.limiter.day_count == 5
    await worker.books.close()
    assert await _shared_count(db) == 5
    assert worker.stats["shared_day/refunds"] == 1
    await worker.books.close()  # nothing left to give back
    assert await _shared_count(db) == 5 and worker.stats["shared_day/refunds"] == 1


async def test_a_refund_goes_into_the_block_in_hand_else_to_the_ledger(db) -> None:
    worker = Worker(MongoQuotaLedger(db), rpd=1000)
    assert await worker.send()
    await worker.books.refund(worker.pick, NOW)  # a 429: back into the block, no round trip
    assert await _shared_count(db) == BLOCK_MAX
    await worker.books.close()
    assert await _shared_count(db) == 0  # the whole block came back, the refund with it
    assert await worker.send()
    await worker.books.close()
    assert await _shared_count(db) == 1
    await worker.books.refund(worker.pick, NOW)  # no block in hand: straight to the ledger
    assert await _shared_count(db) == 0
    assert worker.stats["shared_day/reserves"] == 2


async def test_workers_never_pass_the_limit_together(db) -> None:
    """A 20-RPD project, two workers on one ledger: one by one, 20 sent in all; the
    refused requests leave nothing booked and put the pair out until Pacific midnight."""
    workers = [Worker(MongoQuotaLedger(db), rpd=20) for _ in range(2)]
    sent = [await workers[i % 2].send(NOW + i) for i in range(26)]
    assert sent.count(True) == 20 and sent[20:] == [False] * 6
    assert await _shared_count(db) == 20
    # Each own count follows the shared one up to its last grant; the refused were taken back.
    assert [w.pick.limiter.day_count for w in workers] == [19, 20]
    for worker in workers:
        assert worker.stats["deferred_shared/per_day"] == 3
        until = worker.state.exhausted_until(PROJECT, LITE, NOW + 30)
        assert until == next_pacific_midnight(NOW)
    await workers[0].books.close()
    assert await _shared_count(db) == 20  # blocks of one: nothing held unused


async def test_a_block_refused_near_the_limit_is_asked_again_as_one(db) -> None:
    ledger = MongoQuotaLedger(db)
    assert (await ledger.reserve(PROJECT, LITE, NOW, 100, 95)).granted  # other workers
    worker = Worker(MongoQuotaLedger(db), rpd=100)
    assert block_size(100, 0) == 6  # this worker does not know the 95 yet
    assert await worker.send()
    assert worker.stats["shared_day/reserves"] == 2
    assert await _shared_count(db) == 96
    assert worker.pick.limiter.day_count == 96  # the shared count up to this request
    await worker.books.close()
    assert await _shared_count(db) == 96  # a block of one: nothing to give back


async def test_a_per_day_block_reaches_a_worker_that_does_not_know_the_limit(db) -> None:
    first, second = Worker(MongoQuotaLedger(db)), Worker(MongoQuotaLedger(db))
    assert await first.send()
    assert await _shared_count(db) == BLOCK_MAX  # the limit unknown: blocks all the same
    until = next_pacific_midnight(NOW)
    await first.books.block_day(first.pick, NOW, until, 20)  # first's per-day 429
    assert await _shared_count(db) == 1  # its block in hand was given back
    assert first.stats["shared_day/refunds"] == 1
    assert not await second.send(NOW + 5)
    assert second.state.limiter(PROJECT, LITE).limits.rpd == 20  # learned from the ledger
    assert second.state.exhausted_until(PROJECT, LITE, NOW + 5) == pytest.approx(until)
    assert second.pick.limiter.day_count == 0
    assert second.stats["deferred_shared/per_day"] == 1
    assert second.stats["shared_day/reserves"] == 1  # blocked: no second try with one
    assert await _shared_count(db) == 1


async def test_a_store_that_is_down_never_stops_a_request(caplog) -> None:
    client: AsyncMongoClient = AsyncMongoClient(
        f"mongodb://127.0.0.1:{_dead_port()}", serverSelectionTimeoutMS=300
    )
    window = RedisMinuteWindow.from_url(f"redis://127.0.0.1:{_dead_port()}/0")
    worker = Worker(MongoQuotaLedger(client["down"]), window, rpm=5)
    try:
        with caplog.at_level(logging.WARNING, logger="pipelines.gemini.shared_books"):
            assert await worker.send()
            await worker.books.refund(worker.pick, NOW)
            await worker.books.block_day(worker.pick, NOW, next_pacific_midnight(NOW), 20)
            await worker.books.close()
    finally:
        await window.close()
        await client.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert any("shared Gemini quota unavailable" in w for w in warnings), warnings
    assert any("shared Gemini minute window unavailable" in w for w in warnings), warnings
    assert worker.pick.limiter.day_count == 1  # the process's own count still holds


async def test_the_minute_window_refuses_with_nothing_booked(db, redis_url) -> None:
    """rpm=2 shared by two workers: the third request of the minute waits until the
    window frees, its day reservation back in the block and out of the own limiter."""
    project = f"p-{uuid.uuid4().hex[:8]}"
    windows = [RedisMinuteWindow.from_url(redis_url) for _ in range(2)]
    workers = [Worker(MongoQuotaLedger(db), w, project, rpm=2, rpd=1000) for w in windows]
    try:
        assert await workers[0].send(NOW)
        assert await workers[1].send(NOW + 1)
        assert not await workers[0].send(NOW + 2)
        refused = workers[0]
        assert refused.pick.limiter.blocked_until == pytest.approx(NOW + SPAN, abs=0.01)
        assert refused.stats["waits_shared/per_minute"] == 1
        assert refused.pick.limiter.day_count == 1
        assert await _shared_count(db, project) == 2 * BLOCK_MAX
        for worker in workers:
            await worker.books.close()
        assert await _shared_count(db, project) == 2  # the refused one is not counted
        assert await workers[0].send(NOW + SPAN + 0.5)  # the window has room again
    finally:
        for window in windows:
            await window.close()
