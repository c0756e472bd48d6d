"""RunReport: the offline HTML run report (crawler/report/) of each finished run.

Off (``NotConfigured``) when ``RUN_REPORT_DIR`` is empty. Written at
:data:`~crawler.extensions.run_record.run_finished`, after the final run record, from
what the store holds for the run; a run stopped by the overlap guard, refused for
want of usable inputs (``usage``) or without a database gets none. A report that
cannot be written is a warning, never a failure.

The run's failures with their URL (what :func:`remember_failure` kept during the run,
in ``RunContext.failures``, at most :data:`MAX_FAILURES`) are first added
to the run's ``crawl_runs`` record as ``failures: [{url, reason, message}]``, so a
report regenerated later (``python -m crawler.report RUN_ID``) shows them too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.core.names import CRAWL_RUNS
from crawler.core.run_context import RunContext
from crawler.extensions.run_record import first_line, run_finished
from crawler.report import write_run_report

logger = logging.getLogger(__name__)

FAILURES = "failures"  # the crawl_runs field
MAX_FAILURES = 200


def remember_failure(crawler: Crawler, reason: str, url: str, message: str) -> None:
    """Keep one failure of the run (URL or argument, reason key, one-line message)."""
    failures = RunContext.of(crawler).failures
    if len(failures) < MAX_FAILURES:
        failures.append({"url": url[:500], "reason": reason, "message": message[:500]})


class RunReport:
    def __init__(self, crawler: Crawler, directory: Path) -> None:
        self.crawler = crawler
        self.directory = directory

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunReport:
        directory = crawler.settings.get("RUN_REPORT_DIR")
        if not directory:
            raise NotConfigured("RUN_REPORT_DIR is empty")
        ext = cls(crawler, Path(directory))
        crawler.signals.connect(ext.write, signal=run_finished)
        return ext

    async def write(self, run_id: str, db: Any, reason: str, **_: Any) -> None:
        if db is None or reason in ("overlap", "usage"):
            return
        failures = RunContext.of(self.crawler).failures
        try:
            if failures:
                await db[CRAWL_RUNS].update_one({"_id": run_id}, {"$set": {FAILURES: failures}})
            path = await write_run_report(
                db, run_id, self.directory, images_store=self.crawler.settings.get("IMAGES_STORE")
            )
        except Exception as exc:
            logger.warning("Run report not written: %s", first_line(exc))
            return
        logger.info("Run report: %s", path)
