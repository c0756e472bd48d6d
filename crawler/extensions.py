"""Run-level behaviour: the log line, the run record, the overlap guard, the exit status.

- `CollectorTuning` keeps Python's cyclic garbage collector off the start-up heap and
  collects the youngest generation less often.
- `XhsLogStats` replaces Scrapy's LogStats with a line that also carries images,
  enrichment and Gemini figures.
- `RunExtension` takes the run lease (two runs of the same spider and arguments never
  overlap), writes the `crawl_runs` record at start and end, writes the HTML run report,
  keeps idle distributed workers alive while the shared queue may still fill, and
  decides the exit status that the `crawl` command returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.extensions.logstats import LogStats
from scrapy.statscollectors import StatsCollector

from crawler.report import write_run_report
from pipelines.mongo import acquire_lease, crawl_run_id, get_mongo, release_lease, renew_lease

logger = logging.getLogger(__name__)

# Exit statuses a scheduler can act on (documented in README "Scheduling").
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_OVERLAP = 3
EXIT_COOKIE_EXPIRED = 4
EXIT_BLOCKED = 5
EXIT_STORAGE_DOWN = 6
_EXIT_BY_REASON = {
    "overlap": EXIT_OVERLAP,
    "cookie_expired": EXIT_COOKIE_EXPIRED,
    "ip_blocked": EXIT_BLOCKED,
    "account_flagged": EXIT_BLOCKED,
}
_SECRET_ARG_NAMES = {"key", "token", "cookie", "cookies", "secret", "password"}
_SECRET_ARG_SUFFIXES = ("_key", "_token", "_cookie", "_cookies", "_secret", "_password")


def sum_prefix(stats: Mapping[str, Any], prefix: str) -> int:
    return sum(v for k, v in stats.items() if k.startswith(prefix) and isinstance(v, int | float))


def exit_status(finish_reason: str, stats: Mapping[str, Any]) -> int:
    """The process exit status for a finished run (pure, so it is tested directly)."""
    if finish_reason in _EXIT_BY_REASON:
        return _EXIT_BY_REASON[finish_reason]
    if not finish_reason.startswith(("finished", "closespider_")):
        return EXIT_ERROR
    if stats.get("antibot/captcha_gave_up") and not stats.get("item_scraped_count"):
        return EXIT_BLOCKED
    if stats.get("storage/spooled", 0) > stats.get("storage/replayed", 0):
        return EXIT_STORAGE_DOWN  # notes are safe in the spool, but the database is down
    return EXIT_OK


def _looks_secret(name: str) -> bool:
    name = name.lower()
    return name in _SECRET_ARG_NAMES or name.endswith(_SECRET_ARG_SUFFIXES)


def public_args(spider: Spider) -> dict[str, str]:
    """The spider's `-a` arguments, with anything secret-looking masked."""
    args = getattr(spider, "xhs_args", None) or {}
    return {k: ("***" if _looks_secret(k) else str(v)[:2000]) for k, v in args.items()}


def run_summary(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The counts a run record keeps (from Scrapy stats, by the pipelines' keys)."""

    def by_prefix(prefix: str) -> dict[str, int]:
        return {
            k[len(prefix) :]: v
            for k, v in sorted(stats.items())
            if k.startswith(prefix) and isinstance(v, int)
        }

    return {
        "notes": {
            "scraped": stats.get("item_scraped_count", 0),
            "new": stats.get("notes/new", 0),
            "changed": stats.get("notes/changed", 0),
            "unchanged": stats.get("notes/unchanged", 0),
            "pages": stats.get("response_received_count", 0),
        },
        "images": {
            "ok": stats.get("media/images_ok", 0),
            "failed": sum_prefix(stats, "media/images_failed/"),
            "skipped_existing": stats.get("media/skipped_existing", 0),
        },
        "enrichment": {
            "done": stats.get("enrich/done", 0),
            "deferred": stats.get("enrich/deferred", 0),
            "failed": sum_prefix(stats, "enrich/failed/"),
            "cache_hits": stats.get("enrich/cache_hits", 0),
        },
        "gemini": {
            "requests_by_model": by_prefix("gemini/requests/"),
            "requests_by_key": by_prefix("gemini/requests_by_key/"),
            "http_429_by_class": by_prefix("gemini/429/"),
            "tokens_in": stats.get("gemini/tokens_in", 0),
            "tokens_out": stats.get("gemini/tokens_out", 0),
        },
        "storage": {
            "upserted": stats.get("storage/upserted", 0),
            "modified": stats.get("storage/modified", 0),
            "spooled": stats.get("storage/spooled", 0),
            "replayed": stats.get("storage/replayed", 0),
            "retries": stats.get("storage/retries", 0),
            "superseded": stats.get("storage/superseded", 0),
            "embedded_takeover": stats.get("storage/embedded_takeover", 0),
        },
        "antibot": by_prefix("antibot/"),
        "errors_by_reason": {
            **by_prefix("xhs/parse_error/"),
            **{f"media/{k}": v for k, v in by_prefix("media/images_failed/").items()},
            **{f"enrich/{k}": v for k, v in by_prefix("enrich/failed/").items()},
            **{f"storage/{k}": v for k, v in by_prefix("storage/errors/").items()},
        },
    }


class CollectorTuning:
    """Python's cyclic garbage collector, tuned for a crawl process at spider open.

    - Everything alive then (modules, classes, the Gemini SDK's pydantic models,
      Scrapy's components: a few hundred thousand objects that live as long as the
      process) is moved out of the collector's reach with :func:`gc.freeze`: every full
      collection walked them all again, a quarter of the crawl's CPU per note page.
    - The youngest generation is collected every ``GC_GEN0_THRESHOLD`` allocations
      (default 10,000; Python's is 700, several collections per page). Most of a
      page's objects are freed by reference counting anyway; collecting less often
      cut the crawl's CPU per page by another ~15 % (``bench/crawl_throughput.py``).
      ``0`` keeps Python's threshold.

    Objects made later are collected as usual. Disable with
    ``EXTENSIONS = {"crawler.extensions.CollectorTuning": None}``.
    """

    def __init__(self, gen0_threshold: int) -> None:
        self.gen0_threshold = gen0_threshold

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CollectorTuning:
        ext = cls(max(0, crawler.settings.getint("GC_GEN0_THRESHOLD", 10_000)))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        gc.collect()
        gc.freeze()
        if self.gen0_threshold:
            gc.set_threshold(self.gen0_threshold, *gc.get_threshold()[1:])
        logger.debug(
            "froze %d start-up objects out of the cyclic GC; thresholds %s",
            gc.get_freeze_count(),
            gc.get_threshold(),
        )


class XhsLogStats(LogStats):
    """Scrapy's periodic line, plus notes, images, enrichment and Gemini rates."""

    def calculate_stats(self) -> None:
        super().calculate_stats()
        stats = self.stats.get_stats()
        images = stats.get("media/images_ok", 0)
        requests = sum_prefix(stats, "gemini/requests/")
        prev = getattr(self, "_xhs_prev", (0, 0))
        self.image_rate = (images - prev[0]) * self.multiplier
        self.gemini_rate = (requests - prev[1]) * self.multiplier
        self._xhs_prev = (images, requests)
        self.extra = {
            "done": stats.get("enrich/done", 0),
            "deferred": stats.get("enrich/deferred", 0),
            "gemini": requests,
            "r429": sum_prefix(stats, "gemini/429/"),
            "spooled": stats.get("storage/spooled", 0),
        }

    def log(self, spider: Spider) -> None:
        self.calculate_stats()
        logger.info(
            "Crawled %(pages)d pages (%(pagerate)d/min), %(items)d notes (%(itemrate)d/min), "
            "images %(imgrate)d/min, enrichment done %(done)d deferred %(deferred)d, "
            "Gemini requests %(gemini)d (%(grate)d/min) 429s %(r429)d, spooled %(spooled)d",
            {
                "pages": self.pages,
                "pagerate": self.prate,
                "items": self.items,
                "itemrate": self.irate,
                "imgrate": self.image_rate,
                "grate": self.gemini_rate,
                **self.extra,
            },
            extra={"spider": spider},
        )


class RunExtension:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats  # type: ignore[assignment]
        self.run_id = crawl_run_id(crawler)
        self.lease_enabled = settings.getbool("RUN_LEASE_ENABLED", True)
        self.lease_ttl = settings.getfloat("RUN_LEASE_TTL", 600.0)
        self.report_dir = settings.get("RUN_REPORT_DIR", "data/reports")
        self.distributed = bool(settings.get("REDIS_URL"))
        self.idle_timeout = settings.getfloat("DISTRIBUTED_IDLE_TIMEOUT", 30.0)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{self.run_id}"
        self.lease_name: str | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._idle_since: float | None = None
        self._db: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunExtension:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        if ext.distributed:  # idle keep-alive only; a handler per request costs otherwise
            crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
            crawler.signals.connect(ext.request_scheduled, signal=signals.request_scheduled)
        return ext

    def lease_key(self, spider: Spider) -> str:
        args = json.dumps(getattr(spider, "xhs_args", {}), sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(f"{spider.name}\0{args}".encode()).hexdigest()[:16]
        return f"run:{spider.name}:{digest}"

    async def spider_opened(self, spider: Spider) -> None:
        self.stats.set_value("run_id", self.run_id)
        try:
            handle = await get_mongo(self.crawler)
            self._db = handle.db
        except Exception as exc:  # storage decides what to do; the record is best-effort
            logger.error("Run record unavailable (database down?): %s", exc)
            return
        if self.lease_enabled and not self.distributed:
            self.lease_name = self.lease_key(spider)
            if not await acquire_lease(self._db, self.lease_name, self.owner, self.lease_ttl):
                self.lease_name = None
                logger.error(
                    "Another run of '%s' with the same arguments is in progress; "
                    "exiting (status %d). Its lease expires by itself if it crashed.",
                    spider.name,
                    EXIT_OVERLAP,
                )
                self.crawler.xhs_stop_reason = "overlap"  # type: ignore[attr-defined]
                await self.crawler.engine.close_spider_async(reason="overlap")  # type: ignore[union-attr]
                return
            self._renew_task = asyncio.create_task(self._renew_lease())
        await self._db.crawl_runs.update_one(
            {"_id": self.run_id},
            {
                "$set": {
                    "spider": spider.name,
                    "args": public_args(spider),
                    "started_at": datetime.now(UTC),
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "status": "running",
                }
            },
            upsert=True,
        )

    async def _renew_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            assert self.lease_name is not None
            with contextlib.suppress(Exception):
                await renew_lease(self._db, self.lease_name, self.owner, self.lease_ttl)

    def request_scheduled(self) -> None:
        self._idle_since = None

    def spider_idle(self) -> None:
        """A distributed worker stays up while other workers may still feed the queue."""
        if getattr(self.crawler, "xhs_stop_reason", None):
            return
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < self.idle_timeout:
            raise DontCloseSpider

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        reason = getattr(self.crawler, "xhs_stop_reason", None) or reason
        stats = self.stats.get_stats()
        status = exit_status(reason, stats)
        self.crawler.xhs_exit_status = status  # type: ignore[attr-defined]
        self.stats.set_value("exit_status", status)
        if self._renew_task is not None:
            self._renew_task.cancel()
        if self._db is None or reason == "overlap":
            return
        summary = run_summary(stats)
        with contextlib.suppress(Exception):
            await self._db.crawl_runs.update_one(
                {"_id": self.run_id},
                {
                    "$set": {
                        "finished_at": datetime.now(UTC),
                        "finish_reason": reason,
                        "exit_status": status,
                        "status": "finished" if status == EXIT_OK else "failed",
                        **summary,
                    }
                },
                upsert=True,
            )
        if self.lease_name:
            with contextlib.suppress(Exception):
                await release_lease(self._db, self.lease_name, self.owner)
        if self.report_dir:
            try:
                path = await write_run_report(self._db, self.run_id, Path(self.report_dir))
                logger.info("Run report: %s", path)
            except Exception as exc:
                logger.warning("Run report not written: %s", exc)
