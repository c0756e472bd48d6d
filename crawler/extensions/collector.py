"""CollectorTuning: Python's cyclic garbage collector, tuned for a crawl process."""

from __future__ import annotations

import gc
import logging

from scrapy import Spider, signals
from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


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
        ext = cls(max(0, crawler.settings.getint("GC_GEN0_THRESHOLD")))
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
