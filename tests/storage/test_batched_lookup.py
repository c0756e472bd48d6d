"""The incremental check's lookup coalescing (pure asyncio, no database)."""

from __future__ import annotations

import asyncio

import pytest

from pipelines.incremental import BatchedLookup


async def test_lookups_arriving_while_busy_share_one_query() -> None:
    queries: list[list[str]] = []

    async def fetch(ids: list[str]) -> list[dict]:
        queries.append(sorted(ids))
        await asyncio.sleep(0.01)
        return [{"_id": i, "n": int(i)} for i in ids if i != "3"]

    lookup = BatchedLookup(fetch, max_in_flight=1)
    results = await asyncio.gather(*(lookup.get(k) for k in ["1", "2", "3", "2"]))
    # the first goes out at once; the others waited for it and went out together
    assert queries == [["1"], ["2", "3"]]
    assert results == [{"_id": "1", "n": 1}, {"_id": "2", "n": 2}, None, {"_id": "2", "n": 2}]


async def test_idle_lookups_go_out_at_once_up_to_the_in_flight_limit() -> None:
    started: list[list[str]] = []
    release = asyncio.Event()

    async def fetch(ids: list[str]) -> list[dict]:
        started.append(ids)
        await release.wait()
        return []

    lookup = BatchedLookup(fetch, max_in_flight=2, max_batch=2)
    waiters = [asyncio.create_task(lookup.get(str(i))) for i in range(6)]
    await asyncio.sleep(0.01)
    assert started == [["0"], ["1"]]  # two queries in flight, no waiting window
    release.set()
    assert await asyncio.gather(*waiters) == [None] * 6
    assert sorted(len(ids) for ids in started) == [1, 1, 2, 2]  # the rest, max_batch each


async def test_a_database_error_reaches_every_waiter_of_its_batch() -> None:
    async def fetch(ids: list[str]) -> list[dict]:
        raise ConnectionError("database down")

    lookup = BatchedLookup(fetch)
    results = await asyncio.gather(*(lookup.get(str(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError, match="database down"):
        await lookup.get("again")
