"""The incremental check's lookup coalescing (pure asyncio, no database)."""

from __future__ import annotations

import asyncio

import pytest

from pipelines.incremental import BatchedLookup


async def test_concurrent_lookups_share_one_query() -> None:
    queries: list[list[str]] = []

    async def fetch(ids: list[str]) -> list[dict]:
        queries.append(sorted(ids))
        return [{"_id": i, "n": int(i)} for i in ids if i != "3"]

    lookup = BatchedLookup(fetch, window_s=0.01)
    results = await asyncio.gather(*(lookup.get(k) for k in ["1", "2", "3", "2"]))
    assert queries == [["1", "2", "3"]]
    assert results == [{"_id": "1", "n": 1}, {"_id": "2", "n": 2}, None, {"_id": "2", "n": 2}]


async def test_full_batch_goes_out_without_waiting_and_errors_reach_every_waiter() -> None:
    calls: list[int] = []

    async def fetch(ids: list[str]) -> list[dict]:
        calls.append(len(ids))
        if len(calls) == 2:
            raise ConnectionError("database down")
        return []

    lookup = BatchedLookup(fetch, window_s=60, max_batch=3)
    assert await asyncio.wait_for(asyncio.gather(*(lookup.get(str(i)) for i in range(3))), 1) == [
        None,
        None,
        None,
    ]
    with pytest.raises(ConnectionError, match="database down"):
        await asyncio.wait_for(asyncio.gather(*(lookup.get(str(i)) for i in range(3))), 1)
    assert calls == [3, 3]
