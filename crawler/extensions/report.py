"""RunReport: the offline HTML run report (crawler/report.py) of each finished run.

Off (``NotConfigured``) when ``RUN_REPORT_DIR`` is empty. Written at
:data:`~crawler.extensions.run_record.run_finished`, after the final run record, from
what the store holds for the run; a run stopped by the overlap guard or without a
database gets none. A report that cannot be written is a warning, never a failure.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.extensions.run_record import first_line, run_finished
from crawler.report import write_run_report

logger = logging.getLogger(__name__)


class RunReport:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunReport:
        directory = crawler.settings.get("RUN_REPORT_DIR")
        if not directory:
            raise NotConfigured("RUN_REPORT_DIR is empty")
        ext = cls(Path(directory))
        crawler.signals.connect(ext.write, signal=run_finished)
        return ext

    async def write(self, run_id: str, db: Any, reason: str, **_: Any) -> None:
        if db is None or reason in ("overlap", "usage"):
            return
        try:
            path = await write_run_report(db, run_id, self.directory)
        except Exception as exc:
            logger.warning("Run report not written: %s", first_line(exc))
            return
        logger.info("Run report: %s", path)
