"""RunLease: the overlap guard, one run per spider and arguments at a time.

Off (``NotConfigured``) when ``RUN_LEASE_ENABLED`` is false, and in distributed mode
(``REDIS_URL`` set), where several workers of one run share the queue on purpose.
The lease is taken at :data:`~crawler.extensions.run_record.run_starting`, renewed every
third of ``RUN_LEASE_TTL`` while the run lives, and released at
:data:`~crawler.extensions.run_record.run_finished`. It carries the holder's host, pid,
run id, spider and arguments. A second run finds it held, sets
``RunContext.stop_reason = "overlap"`` and stops (exit status 3) without a run record,
unless the holder is dead on this host (``kill -9``, a forced stop): then the lease is
taken over at once (``run_lease/taken_over``; the run record closes the dead run's
``crawl_runs`` record as ``crashed``).
With the database unreachable the guard says so in one line and the run goes on
(its notes go to the spool).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.core.run_context import RunContext
from crawler.extensions.run_record import EXIT_OVERLAP, first_line, run_finished, run_starting
from crawler.extensions.run_stats import public_args
from pipelines.mongo import (
    acquire_lease,
    crawl_run_id,
    release_lease,
    renew_lease,
    take_over_dead_lease,
    this_process,
)

logger = logging.getLogger(__name__)


def lease_key(spider: Spider) -> str:
    """``run:<spider>:<digest of its arguments>``: same spider and arguments, same lease."""
    args = json.dumps(getattr(spider, "xhs_args", {}), sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(f"{spider.name}\0{args}".encode()).hexdigest()[:16]
    return f"run:{spider.name}:{digest}"


class RunLease:
    def __init__(self, crawler: Crawler, ttl: float) -> None:
        self.crawler = crawler
        self.ttl = ttl
        self.context = RunContext.of(crawler)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{crawl_run_id(crawler)}"
        self.name: str | None = None  # the lease held, once taken
        self._db: Any = None
        self._renew_task: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunLease:
        settings = crawler.settings
        if not settings.getbool("RUN_LEASE_ENABLED"):
            raise NotConfigured("RUN_LEASE_ENABLED is off")
        if settings.get("REDIS_URL"):
            raise NotConfigured("distributed workers share one run: no lease")
        ext = cls(crawler, settings.getfloat("RUN_LEASE_TTL"))
        crawler.signals.connect(ext.acquire, signal=run_starting)
        crawler.signals.connect(ext.release, signal=run_finished)
        crawler.signals.connect(ext.stop_renewing, signal=signals.spider_closed)
        return ext

    async def acquire(self, spider: Spider, db: Any) -> None:
        if db is None:
            logger.error("Overlap guard off for this run: the database is unreachable")
            return
        name = lease_key(spider)
        holder = this_process(crawl_run_id(self.crawler), spider=spider.name,
                              args=public_args(spider))  # fmt: skip
        try:
            taken = await acquire_lease(db, name, self.owner, self.ttl, holder=holder)
            if not taken:
                dead = await take_over_dead_lease(db, name, self.owner, self.ttl, holder=holder)
                taken = dead is not None
                if dead is not None:
                    self.crawler.stats.inc_value("run_lease/taken_over")
                    logger.warning(
                        "The lease of '%s' was held by a run that is gone (%s): taken over",
                        spider.name,
                        dead.get("owner"),
                    )
        except Exception as exc:
            logger.error(
                "Overlap guard off for this run: the database is unreachable (%s)",
                first_line(exc),
            )
            return
        if not taken:
            logger.error(
                "Another run of '%s' with the same arguments is in progress; "
                "exiting (status %d). Its lease expires by itself if it crashed.",
                spider.name,
                EXIT_OVERLAP,
            )
            self.context.stop_reason = "overlap"
            assert self.crawler.engine is not None
            await self.crawler.engine.close_spider_async(reason="overlap")
            return
        self.name, self._db = name, db
        self._renew_task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            assert self.name is not None
            with contextlib.suppress(Exception):
                await renew_lease(self._db, self.name, self.owner, self.ttl)

    def stop_renewing(self) -> None:
        if self._renew_task is not None:
            self._renew_task.cancel()
            self._renew_task = None

    async def release(self, **_: Any) -> None:
        self.stop_renewing()
        if self.name is not None:
            with contextlib.suppress(Exception):
                await release_lease(self._db, self.name, self.owner)
            self.name = None
