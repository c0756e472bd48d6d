"""`scrapy crawl` with exit statuses a scheduler can act on.

Scrapy's own command exits 0 whatever happened during the crawl. This one returns the
status the run extension decided (see crawler/extensions.py: 0 ok, 3 overlap,
4 cookie expired, 5 blocked, 6 storage down, 1 other failures).
"""

from __future__ import annotations

import argparse
from typing import Any

from scrapy.commands.crawl import Command as ScrapyCrawlCommand


class Command(ScrapyCrawlCommand):
    def _create_crawler(self, spname: Any) -> Any:
        self._crawler = super()._create_crawler(spname)
        return self._crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        super().run(args, opts)
        if self.exitcode == 0:
            self.exitcode = getattr(getattr(self, "_crawler", None), "xhs_exit_status", 0)
