"""XhsLogStats: Scrapy's periodic line, plus notes, images, enrichment and Gemini rates."""

from __future__ import annotations

import logging

from scrapy import Spider
from scrapy.extensions.logstats import LogStats

from crawler.extensions.summary import sum_prefix

logger = logging.getLogger(__name__)


class XhsLogStats(LogStats):
    """Replaces ``scrapy.extensions.logstats.LogStats`` (switched off in settings)."""

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
