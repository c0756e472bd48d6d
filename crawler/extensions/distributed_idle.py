"""DistributedIdle: an idle distributed worker stays up while the shared queue may fill.

Off (``NotConfigured``) without ``REDIS_URL``. Another worker of the same run may still
be parsing a listing and pushing note pages to the shared queue; a worker whose own
queue ran dry waits ``DISTRIBUTED_IDLE_TIMEOUT`` seconds of continuous idleness before it
lets the spider close. A run that is stopping (``RunContext.stop_reason``) is not kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured

from crawler.core.run_context import RunContext


class DistributedIdle:
    def __init__(
        self, crawler: Crawler, timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.context = RunContext.of(crawler)
        self.timeout = timeout
        self.clock = clock
        self._idle_since: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DistributedIdle:
        if not crawler.settings.get("REDIS_URL"):
            raise NotConfigured("REDIS_URL is unset: not a distributed run")
        ext = cls(crawler, crawler.settings.getfloat("DISTRIBUTED_IDLE_TIMEOUT"))
        # Connected only here: a handler per scheduled request costs otherwise.
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.request_scheduled, signal=signals.request_scheduled)
        return ext

    def request_scheduled(self) -> None:
        self._idle_since = None

    def spider_idle(self) -> None:
        if self.context.stop_reason:
            return
        now = self.clock()
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < self.timeout:
            raise DontCloseSpider
