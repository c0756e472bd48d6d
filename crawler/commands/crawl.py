"""`scrapy crawl` with exit statuses a scheduler can act on, and bad spider arguments
reported in one line (exit status 2) before anything starts.

Scrapy's own command exits 0 whatever happened during the crawl. This one returns the
status the run extension decided (see crawler/extensions.py: 0 ok, 3 overlap,
4 cookie expired, 5 blocked, 6 storage down, 1 other failures).
"""

from __future__ import annotations

import argparse
from typing import Any

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from crawler.config import ConfigError
from crawler.spiders.xhs import SpiderArgumentError


class Command(ScrapyCrawlCommand):
    def _create_crawler(self, spname: Any) -> Any:
        self._crawler = super()._create_crawler(spname)
        return self._crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args and self.crawler_process is not None:
            # Bad spider arguments: one clear line and exit status 2, not a traceback.
            spidercls = self.crawler_process.spider_loader.load(args[0])
            try:
                spidercls(**opts.spargs)
            except (SpiderArgumentError, ConfigError) as exc:
                raise UsageError(str(exc), print_help=False) from exc
        super().run(args, opts)
        if self.exitcode == 0:
            self.exitcode = getattr(getattr(self, "_crawler", None), "xhs_exit_status", 0)
