"""Fixtures of the client tests: clients on the emulator's clock (sleeping advances it),
and an async handle on the test's own database of the real Mongo-wire server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from pipelines.gemini import GeminiClient, GeminiSettings, MemoryStateStore
from tests.gemini_client.helpers import close_all


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def client_factory(sleeps: list[float]) -> AsyncIterator[Callable[..., GeminiClient]]:
    """Clients on the emulator's clock; their sleep advances that clock. Closed at teardown."""
    clients: list[GeminiClient] = []

    def make(
        emu: Any, keys: str, models: str, store: MemoryStateStore | None = None, **env: Any
    ) -> GeminiClient:
        settings = GeminiSettings.from_env_like(
            {
                "GEMINI_API_KEYS": keys,
                "GEMINI_MODELS": models,
                "GEMINI_BASE_URL": emu.base_url,
                **env,
            }
        )

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            emu.clock.advance(seconds)
            await asyncio.sleep(0)

        client = GeminiClient(settings, store, clock=emu.clock.time, sleep=sleep)
        clients.append(client)
        return client

    yield make
    await close_all(*clients)


@pytest.fixture
async def db(mongo_uri: str, mongo_db_name: str) -> AsyncIterator[AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    yield client[mongo_db_name]
    await client.drop_database(mongo_db_name)
    await client.close()
