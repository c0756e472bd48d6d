"""RunRecord: the ``crawl_runs`` record at start and end, and the run's exit status.

At spider open it opens the store, sends :data:`run_starting` (the lease connects
there: a component that sets ``RunContext.stop_reason = "overlap"`` ends the run before
any record is written), then writes the ``running`` record. At spider close it decides
the exit status (:func:`exit_status`, kept in ``RunContext.exit_status`` for the crawl
command), writes the final record and sends :data:`run_finished` (the report and the
lease's release connect there). Run components connect to these two signals rather than
to Scrapy's, whose async handlers run concurrently: the order is the contract.

A database that is unreachable at start is one line in the log (the notes go to the
spool; the exit status says 6), never a traceback.

A run killed hard (``kill -9``, a forced stop: its ``spider_closed`` never ran) leaves
its record ``running``. The next run on the same host closes every such record whose
process is gone as ``crashed`` (:func:`close_crashed_runs`, ``closed_by`` its run id),
and the crawl command exits non-zero for a run whose close never decided a status.
With ``JOBDIR`` set, the record also marks the job directory open while the run lives
(:mod:`crawler.extensions.jobdir`: what resume promises after a hard kill).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from crawler.commands.exit_status import ExitStatus
from crawler.core.names import CRAWL_RUNS
from crawler.core.run_context import RunContext
from crawler.core.timeutil import utcnow
from crawler.extensions.jobdir import mark_closed, mark_open
from crawler.extensions.run_stats import public_args, run_counts
from pipelines.mongo import crawl_run_id, get_mongo, holder_dead
from pipelines.mongo.leases import pid_namespace

logger = logging.getLogger(__name__)

# Exit statuses a scheduler can act on (crawler/commands/exit_status.py, the README table).
EXIT_OK = int(ExitStatus.OK)
EXIT_ERROR = int(ExitStatus.ERROR)
EXIT_USAGE = int(ExitStatus.USAGE)
EXIT_OVERLAP = int(ExitStatus.OVERLAP)
EXIT_COOKIE_EXPIRED = int(ExitStatus.COOKIE_EXPIRED)
EXIT_BLOCKED = int(ExitStatus.BLOCKED)
EXIT_STORAGE_DOWN = int(ExitStatus.STORAGE_DOWN)
_EXIT_BY_REASON = {
    "usage": EXIT_USAGE,  # every input refused once the store was asked (no token known)
    "overlap": EXIT_OVERLAP,
    "cookie_expired": EXIT_COOKIE_EXPIRED,
    "ip_blocked": EXIT_BLOCKED,
    "account_flagged": EXIT_BLOCKED,
}

# Signals of the run (sent with ``send_catch_log_async``; handlers may be coroutines).
#: ``run_starting(spider, db)``: ``db`` is None when the store is unreachable.
run_starting = object()
#: ``run_finished(spider, run_id, db, reason, exit_status)``, after the final record.
run_finished = object()


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


async def close_crashed_runs(db: Any, *, by: str, host: str | None = None) -> list[str]:
    """Close as ``crashed`` the ``running`` records of runs on this host whose process
    is gone (:func:`pipelines.mongo.holder_dead`); the ids closed."""
    host = host or socket.gethostname()
    closed = []
    projection = {"host": 1, "pidns": 1, "pid": 1, "started_at": 1}
    async for record in db[CRAWL_RUNS].find({"status": "running", "host": host}, projection):
        if record["_id"] == by or not holder_dead(record, host=host, since="started_at"):
            continue
        result = await db[CRAWL_RUNS].update_one(
            {"_id": record["_id"], "status": "running"},
            {
                "$set": {
                    "status": "crashed",
                    "finish_reason": "crashed",
                    "finished_at": utcnow(),
                    "closed_by": by,
                }
            },
        )
        if result.modified_count:
            closed.append(record["_id"])
    return closed


def first_line(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` on one line, cut: driver errors can run to a hundred lines."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RunRecord:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats  # type: ignore[assignment]
        self.context = RunContext.of(crawler)
        self.run_id = crawl_run_id(crawler)
        self.jobdir = crawler.settings.get("JOBDIR") or None
        self._db: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecord:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    async def spider_opened(self, spider: Spider) -> None:
        self.stats.set_value("run_id", self.run_id)
        self.context.started_at = utcnow()
        try:
            self._db = (await get_mongo(self.crawler)).db
        except Exception as exc:  # storage decides what to do; the record is best-effort
            logger.error("Run record unavailable, the database is unreachable: %s", first_line(exc))
        await self.crawler.signals.send_catch_log_async(run_starting, spider=spider, db=self._db)
        if self.context.stop_reason == "overlap":
            return
        if self.jobdir:
            mark_open(self.jobdir, self.run_id)
        if self._db is None:
            return
        try:
            crashed = await close_crashed_runs(self._db, by=self.run_id)
            if crashed:
                self.stats.set_value("run_record/closed_crashed", len(crashed))
                logger.warning(
                    "Closed %d run record(s) of runs that died without closing: %s",
                    len(crashed),
                    ", ".join(crashed),
                )
            await self._db[CRAWL_RUNS].update_one(
                {"_id": self.run_id},
                {
                    "$set": {
                        "spider": spider.name,
                        "args": public_args(spider),
                        "started_at": self.context.started_at,
                        "host": socket.gethostname(),
                        "pidns": pid_namespace(),
                        "pid": os.getpid(),
                        "status": "running",
                    }
                },
                upsert=True,
            )
        except Exception as exc:
            logger.error("Run record not written, the database is unreachable: %s", first_line(exc))

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        reason = self.context.stop_reason or reason
        stats = self.stats.get_stats()
        status = exit_status(reason, stats)
        self.context.exit_status = status
        self.stats.set_value("exit_status", status)
        if self.jobdir and reason != "overlap":
            mark_closed(self.jobdir)  # Scrapy has saved the job's state by now
        if self._db is not None and reason == "usage":
            # Every input was refused once the store was asked (issue 13): like a run asked
            # for nothing, it leaves no record (the one written at start goes).
            with contextlib.suppress(Exception):
                await self._db[CRAWL_RUNS].delete_one({"_id": self.run_id})
        elif self._db is not None and reason != "overlap":
            with contextlib.suppress(Exception):
                await self._db[CRAWL_RUNS].update_one(
                    {"_id": self.run_id},
                    {
                        "$set": {
                            "finished_at": utcnow(),
                            "finish_reason": reason,
                            "exit_status": status,
                            "status": "finished" if status == EXIT_OK else "failed",
                            **run_counts(stats),
                        }
                    },
                    upsert=True,
                )
        await self.crawler.signals.send_catch_log_async(
            run_finished,
            spider=spider,
            run_id=self.run_id,
            db=self._db,
            reason=reason,
            exit_status=status,
        )
