"""`scrapy crawl` with exit statuses a scheduler can act on; bad configuration and bad
spider arguments reported in one line on stderr (exit status 2) before anything starts.

Scrapy's own command exits 0 whatever happened during the crawl. This one returns the
status the run record decided (``RunContext.of(crawler).exit_status``, see
crawler/extensions/run_record.py: 0 ok, 3 overlap, 4 cookie expired, 5 blocked,
6 storage down, 1 other failures). A run whose close never decided one (a forced
stop, a crash at start) exits 1, never 0. With ``JOBDIR`` set, the state a killed run
left there is set aside first (:mod:`crawler.extensions.jobdir`).

The checks run in ``process_options``, before Scrapy sets up logging and the crawler
process, so the error line is the only thing on stderr: every knob through
:func:`crawler.validation.validate_settings`, then the spider's own arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.spiderloader import get_spider_loader

from crawler.core.run_context import RunContext
from crawler.extensions.jobdir import set_aside_if_killed
from crawler.extensions.run_record import EXIT_ERROR
from crawler.validation import validate_settings

EXIT_CONFIG = 2  # bad configuration or spider arguments (as Scrapy's usage errors)


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2."""
    sys.stderr.write(f"scrapy crawl: error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_CONFIG)


class Command(ScrapyCrawlCommand):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        try:
            validate_settings(self.settings)
            if args:
                spidercls = get_spider_loader(self.settings).load(args[0])
                spidercls(**opts.spargs)
        except KeyError:
            pass  # an unknown spider name: Scrapy's own message, later
        except ValueError as exc:  # ConfigError, SpiderArgumentError, a spider's own check
            fail(str(exc))

    def _create_crawler(self, spname: Any) -> Any:
        self._crawler = super()._create_crawler(spname)
        return self._crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        jobdir = self.settings.get("JOBDIR")
        if jobdir:  # before Scrapy reads it: a killed run's half-written state goes aside
            set_aside_if_killed(jobdir)
        super().run(args, opts)
        crawler = getattr(self, "_crawler", None)
        if self.exitcode == 0 and crawler is not None:
            status = RunContext.of(crawler).exit_status
            self.exitcode = EXIT_ERROR if status is None else status
