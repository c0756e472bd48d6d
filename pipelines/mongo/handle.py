"""The connection: one started client and database per crawler, or per process.

- :class:`MongoHandle`: the ``MONGO_URI`` server or the embedded one
  (:mod:`pipelines.mongo.embedded`), started once, closed once.
- :func:`get_mongo`: the crawler's shared handle, kept in ``RunContext.of(crawler).store``
  and closed at ``engine_stopped``.
- :func:`open_database` / :func:`close_databases`: shared per process and event loop,
  for code without a crawler (report, demo, scripts).
- :func:`crawl_run_id`: the run id, kept in ``RunContext.of(crawler).run_id``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from crawler.core.run_context import RunContext
from crawler.core.timeutil import utcnow
from pipelines.mongo.embedded import ensure_embedded, release_embedded, take_over
from pipelines.mongo.settings import MongoSettings, mask_uri

logger = logging.getLogger(__name__)


class MongoHandle:
    """One client and database for a crawler: the URI's server or the embedded one.

    ``await start()`` is idempotent and safe to call concurrently; ``close()`` also
    releases the embedded server reference.
    """

    def __init__(self, settings: MongoSettings) -> None:
        self.settings = settings
        self.embedded = not settings.uri
        self.uri_fingerprint = "" if self.embedded else mask_uri(settings.uri)
        self._client: AsyncMongoClient | None = None
        self._db: AsyncDatabase | None = None
        self._owns_embedded = False
        self._uri = ""  # the embedded server's address
        self._lock = asyncio.Lock()

    @property
    def client(self) -> AsyncMongoClient:
        if self._client is None:
            raise RuntimeError("MongoHandle used before start()")
        return self._client

    @property
    def db(self) -> AsyncDatabase:
        if self._db is None:
            raise RuntimeError("MongoHandle used before start()")
        return self._db

    @property
    def started(self) -> bool:
        return self._client is not None

    async def start(self) -> MongoHandle:
        async with self._lock:
            if self._client is not None:
                return self
            s = self.settings
            uri = s.uri
            if self.embedded:
                uri, self._owns_embedded = await ensure_embedded(
                    s.data_dir, host=s.embedded_host, port=s.embedded_port, wait_s=s.embedded_wait_s
                )
                self.uri_fingerprint = mask_uri(uri)
                self._uri = uri
            self._client = AsyncMongoClient(
                uri,
                tz_aware=True,
                serverSelectionTimeoutMS=s.server_selection_timeout_ms,
                connectTimeoutMS=s.server_selection_timeout_ms,
                socketTimeoutMS=s.socket_timeout_ms,
                appname="xhs-crawler",
            )
            self._db = self._client[s.database]
            logger.info(
                "MongoDB %s database %r (%s)",
                self.uri_fingerprint,
                s.database,
                "embedded" if self.embedded else "MONGO_URI",
            )
            return self

    async def take_over(self) -> bool:
        """Keep an embedded database reachable after its serving process is gone.

        For a handle on another process's embedded server: when that process has
        exited (crashed or finished), serve the directory from this process on the same
        address (:func:`pipelines.mongo.embedded.take_over`), so this client (and
        everything using it) reconnects without noticing. ``True`` if the directory is
        now served from here. Called by storage when writes fail; a no-op for
        ``MONGO_URI`` and for the owner itself.
        """
        if not self.embedded or self._owns_embedded or not self._uri:
            return False
        async with self._lock:
            self._owns_embedded = await take_over(self.settings.data_dir, self._uri)
            return self._owns_embedded

    async def close(self) -> None:
        async with self._lock:
            if self._client is not None:
                await self._client.close()
                self._client = None
                self._db = None
            if self._owns_embedded:
                self._owns_embedded = False
                await release_embedded(self.settings.data_dir)


async def get_mongo(crawler: Any) -> MongoHandle:
    """The crawler's shared, started handle (created on first use, closed at engine stop)."""
    from scrapy import signals

    context = RunContext.of(crawler)
    handle: MongoHandle | None = context.store
    if handle is None:
        handle = context.store = MongoHandle(MongoSettings.from_settings(crawler.settings))
        crawler.signals.connect(handle.close, signal=signals.engine_stopped, weak=False)
    return await handle.start()


async def close_mongo(crawler: Any) -> None:
    """Close the crawler's handle now (what ``engine_stopped`` does; for scripts and tests)."""
    handle: MongoHandle | None = RunContext.of(crawler).store
    if handle is not None:
        await handle.close()


_PROCESS_HANDLES: dict[tuple[int, MongoSettings], MongoHandle] = {}


async def open_database(settings: MongoSettings | Any) -> tuple[AsyncMongoClient, AsyncDatabase]:
    """``(client, db)`` shared per process and event loop, for code without a crawler.

    Accepts a :class:`MongoSettings` or Scrapy settings. Close them all with
    :func:`close_databases`.
    """
    ms = settings if isinstance(settings, MongoSettings) else MongoSettings.from_settings(settings)
    key = (id(asyncio.get_running_loop()), ms)
    handle = _PROCESS_HANDLES.get(key)
    if handle is None:
        handle = _PROCESS_HANDLES[key] = MongoHandle(ms)
    await handle.start()
    return handle.client, handle.db


async def close_databases() -> None:
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _PROCESS_HANDLES if k[0] == loop_id]:
        await _PROCESS_HANDLES.pop(key).close()


def crawl_run_id(crawler: Any) -> str:
    """The run id shared by storage (``notes.crawl_run_id``, ``note_stats``) and the run
    record: setting ``CRAWL_RUN_ID`` if given, else generated once per crawler
    (``20260131T120000Z-1a2b3c``); kept in ``RunContext.of(crawler).run_id``."""
    context = RunContext.of(crawler)
    if not context.run_id:
        context.run_id = str(crawler.settings.get("CRAWL_RUN_ID") or "") or (
            f"{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        )
    return context.run_id
