"""The incremental check's lookup coalescing (pure asyncio, no database)."""

from __future__ import annotations

import asyncio

import pytest

from pipelines.incremental import BatchedLookup


def recording_fetch(queries: list[list[str]], delay: float = 0.0):
    async def fetch(ids: list[str]) -> list[dict]:
        queries.append(list(ids))
        await asyncio.sleep(delay)
        return [{"_id": i, "n": int(i)} for i in ids if i != "3"]

    return fetch


async def test_lookups_wait_for_a_batch_and_share_one_query() -> None:
    queries: list[list[str]] = []
    lookup = BatchedLookup(recording_fetch(queries), batch=4, max_wait_s=30)
    waiters = [asyncio.create_task(lookup.get(k)) for k in ["1", "2", "3"]]
    await asyncio.sleep(0.01)
    assert queries == []  # three of four: still waiting
    waiters.append(asyncio.create_task(lookup.get("2")))  # the same id joins its twin
    waiters.append(asyncio.create_task(lookup.get("4")))  # the fourth id: sent at once
    results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert queries == [["1", "2", "3", "4"]]
    assert [r and r["n"] for r in results] == [1, 2, None, 2, 4]


async def test_a_lone_lookup_goes_out_after_the_wait() -> None:
    queries: list[list[str]] = []
    lookup = BatchedLookup(recording_fetch(queries), batch=32, max_wait_s=0.05)
    loop = asyncio.get_running_loop()
    asked = loop.time()
    assert (await lookup.get("7"))["n"] == 7
    assert queries == [["7"]] and 0.045 <= loop.time() - asked < 1


async def test_lookups_arriving_while_busy_share_one_query() -> None:
    queries: list[list[str]] = []
    lookup = BatchedLookup(recording_fetch(queries, delay=0.01), batch=1, max_in_flight=1)
    results = await asyncio.gather(*(lookup.get(k) for k in ["1", "2", "3", "2"]))
    # the first goes out at once; the others waited for it and went out together
    assert queries == [["1"], ["2", "3"]]
    assert results == [{"_id": "1", "n": 1}, {"_id": "2", "n": 2}, None, {"_id": "2", "n": 2}]


async def test_in_flight_limit_and_max_batch() -> None:
    started: list[list[str]] = []
    release = asyncio.Event()

    async def fetch(ids: list[str]) -> list[dict]:
        started.append(ids)
        await release.wait()
        return []

    lookup = BatchedLookup(fetch, batch=1, max_in_flight=2, max_batch=2)
    waiters = [asyncio.create_task(lookup.get(str(i))) for i in range(6)]
    await asyncio.sleep(0.01)
    assert started == [["0"], ["1"]]  # two queries in flight
    release.set()
    assert await asyncio.gather(*waiters) == [None] * 6
    assert sorted(len(ids) for ids in started) == [1, 1, 2, 2]  # the rest, max_batch each


async def test_a_database_error_reaches_every_waiter_of_its_batch() -> None:
    async def fetch(ids: list[str]) -> list[dict]:
        raise ConnectionError("database down")

    lookup = BatchedLookup(fetch, max_wait_s=0.01)
    results = await asyncio.gather(*(lookup.get(str(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError, match="database down"):
        await lookup.get("again")
