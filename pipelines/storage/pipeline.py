"""MongoStoragePipeline: the Scrapy face of storage (item → unit → batched writer).

Stats: ``storage/upserted`` (documents created), ``storage/modified`` (documents
changed by updates, enrichment merges included), ``storage/spooled``,
``storage/replayed``, ``storage/retries``, ``storage/superseded`` (newer data was
already stored), ``storage/truncated_<collection>`` (``storage/truncated_notes``),
``storage/errors/<reason>`` (``unknown_item``, ``prepare_failed`` and Mongo's reasons),
and ``<collection>/<change>`` (``notes/new`` …) from the incremental verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from itemadapter import ItemAdapter

from crawler.core.timeutil import Clock, utcnow
from pipelines.guard import guard_item
from pipelines.mongo import MongoHandle, MongoSettings, crawl_run_id, get_mongo
from pipelines.storage.comments import comment_units
from pipelines.storage.kinds import kind_for_item
from pipelines.storage.unit import RejectedNote
from pipelines.storage.writer import StatsSink, UnitWriter

logger = logging.getLogger(__name__)


class MongoStoragePipeline:
    """Buffers units and hands full batches to one background writer task.

    ``process_item`` returns once its note is buffered; it waits only when two batches
    are already queued behind the one being written (backpressure), so preparing notes
    overlaps with the database's work. Batches are written in order. ``flush()`` waits
    until everything buffered is stored (or spooled); ``close_spider`` flushes.
    """

    MAX_QUEUED_BATCHES = 2

    def __init__(
        self,
        crawler: Any,
        settings: MongoSettings,
        *,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.crawler = crawler
        self.settings = settings
        self.stats: StatsSink = crawler.stats
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._handle: MongoHandle | None = None
        self.writer: UnitWriter | None = None
        self._buffer: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(
            maxsize=self.MAX_QUEUED_BATCHES
        )
        self._tasks: list[asyncio.Task] = []

    @classmethod
    def from_crawler(cls, crawler: Any) -> MongoStoragePipeline:
        return cls(crawler, MongoSettings.from_settings(crawler.settings))

    async def open_spider(self) -> None:
        self._handle = await get_mongo(self.crawler)
        self.writer = UnitWriter(
            self._handle.db,
            self.settings,
            self.stats,
            monotonic=self._monotonic,
            sleep=self._sleep,
            take_over=self._handle.take_over,
        )
        await self.writer.start()
        self._tasks = [
            asyncio.create_task(self._write_batches()),
            asyncio.create_task(self._flush_periodically()),
        ]

    async def close_spider(self) -> None:
        if self._tasks:
            await self.flush()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @guard_item("storage")
    async def process_item(self, item: Any) -> Any:
        """Buffer the item's unit; the item itself goes on unchanged, stored or not."""
        kind = kind_for_item(item)
        if kind is None:
            self.stats.inc_value("storage/errors/unknown_item")
            logger.error("not stored: no storage kind for %s items", type(item).__name__)
            return item
        adapter = ItemAdapter(item)
        change = adapter.get("change") or "unknown"
        self.stats.inc_value(f"{kind.collection}/{change}")
        try:
            unit = kind.prepare(
                adapter,
                now=self._clock(),
                run_id=crawl_run_id(self.crawler),
                max_chars=self.settings.max_string_chars,
            )
        except RejectedNote as exc:
            self.stats.inc_value(f"storage/errors/{exc.reason}")
            logger.error("not stored: %s", exc)
            return item
        except Exception:  # a bug in preparing one item must not cost the crawl
            self.stats.inc_value("storage/errors/prepare_failed")
            logger.exception("not stored: preparing %s failed", kind.name)
            return item
        if unit["truncated"]:
            self.stats.inc_value(f"storage/truncated_{kind.collection}")
        if not self._buffer:
            self._oldest = self._monotonic()
        self._buffer.append(unit)
        # The note's thread, when read in this crawl: one unit per comment.
        self._buffer.extend(
            comment_units(
                adapter,
                now=unit["crawled_at"],
                run_id=unit["run_id"],
                max_chars=self.settings.max_string_chars,
            )
        )
        if len(self._buffer) >= self.settings.batch_size:
            await self._hand_over(everything=False)
        return item

    async def _hand_over(self, *, everything: bool) -> None:
        """Queue full batches (and with ``everything``, the remainder too), in order."""
        size = self.settings.batch_size
        while len(self._buffer) >= size or (everything and self._buffer):
            units = self._buffer[:size]
            del self._buffer[: len(units)]
            self._oldest = self._monotonic()
            await self._queue.put(units)

    async def flush(self) -> None:
        """Store (or spool) everything buffered so far; returns when it is done."""
        if not self._tasks:
            raise RuntimeError("open_spider() not called")
        await self._hand_over(everything=True)
        await self._queue.join()

    async def _write_batches(self) -> None:
        assert self.writer is not None
        while True:
            units = await self._queue.get()
            try:
                await self.writer.write(units)
            except Exception:  # e.g. the spool's disk is full: nowhere left to keep them
                self.stats.inc_value("storage/errors/lost", len(units))
                logger.exception("%d notes could be neither stored nor spooled", len(units))
            finally:
                self._queue.task_done()

    async def _flush_periodically(self) -> None:
        interval = self.settings.flush_interval_s
        while True:
            await asyncio.sleep(max(0.01, interval / 4))
            if self._buffer and self._monotonic() - self._oldest >= interval:
                await self._hand_over(everything=True)
