"""The baseline of bench.crawl_throughput: a bare Scrapy spider that only downloads pages.

``scrapy runspider bench/bare_spider.py -a urls_file=PATH`` (one URL per line), run
outside the project so that none of its settings, middlewares or pipelines apply. It
parses nothing and yields no item: what it costs is what Scrapy itself costs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy.http import Response


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, urls_file: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = [u for u in Path(urls_file).read_text().splitlines() if u.strip()]

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse, dont_filter=True)

    def parse(self, response: Response) -> None:
        self.crawler.stats.inc_value("bare/pages", 1)
        self.crawler.stats.inc_value("bare/bytes", len(response.body))
