"""Progress: the periodic log line, toward the run's target.

Replaces Scrapy's ``LogStats`` (switched off in settings). The first line comes
:data:`FIRST_AFTER_S` seconds after the spider opens, then one every
``PROGRESS_INTERVAL`` seconds (0 switches the line off)::

    Progress: 23/60 notes (38%), 11.5/min, ETA 3m 12s | listed 60, fetched 25,
    images 80, enriched 20, stored 23, deferred 0 | Gemini 20 requests, 0 429s

The target is ``max_notes`` (enrich: ``limit``) when given, else what is known so far:
the notes scheduled or listed (a listing's size once its pages have answered), or
the enrich spider's backlog due at start (``RunContext.backlog_due``). Rate and ETA are
over the whole run (steadier than per interval); no ETA before the first note is stored.

The same target is published as ``RunContext.notes_target`` (even with the line off):
the enrichment pipeline's packing decision counts the notes still to come with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.core.run_context import RunContext
from crawler.extensions.run_stats import sum_prefix

logger = logging.getLogger(__name__)

FIRST_AFTER_S = 2.0


def notes_stored(stats: Mapping[str, Any]) -> int:
    """Note items through the pipelines (creator profiles are items too: not counted)."""
    return max(0, stats.get("item_scraped_count", 0) - stats.get("profiles/parsed", 0))


@dataclass(frozen=True)
class Counts:
    listed: int
    fetched: int
    images: int
    enriched: int
    stored: int
    deferred: int
    gemini: int
    r429: int

    @classmethod
    def of(cls, stats: Mapping[str, Any]) -> Counts:
        return cls(
            listed=stats.get("xhs/listing_refs", 0),
            fetched=stats.get("xhs/notes_parsed", 0) + stats.get("enrich_backlog/notes", 0),
            images=stats.get("media/images_ok", 0),
            enriched=stats.get("enrich/done", 0),
            stored=notes_stored(stats),
            deferred=stats.get("enrich/deferred", 0),
            gemini=sum_prefix(stats, "gemini/requests/"),
            r429=sum_prefix(stats, "gemini/429/"),
        )


def target_of(spider: Spider, counts: Counts, backlog_due: int | None = None) -> int:
    """The number of notes the run is heading for, as far as it is known now
    (``backlog_due``: the enrich spider's backlog at start, ``RunContext.backlog_due``)."""
    fixed = getattr(spider, "max_notes", None) or getattr(spider, "limit", None)
    if fixed:
        return int(fixed)
    scheduled = len(getattr(spider, "scheduled", ()) or ())
    return max(scheduled, backlog_due or 0, counts.listed, counts.fetched, counts.stored)


def publish_target(crawler: Crawler) -> None:
    """``RunContext.notes_target``: the run's target read from the stats when asked."""
    context = RunContext.of(crawler)

    def target() -> int:
        if crawler.spider is None or crawler.stats is None:
            return 0
        counts = Counts.of(crawler.stats.get_stats())
        return target_of(crawler.spider, counts, context.backlog_due)

    context.notes_target = target


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def progress_line(counts: Counts, target: int, elapsed_s: float) -> str:
    """The line (pure: counts, target and elapsed time in, text out)."""
    done = min(counts.stored, target) if target else counts.stored
    percent = f" ({100 * done // target}%)" if target else ""
    rate = counts.stored / elapsed_s * 60 if elapsed_s > 0 else 0.0
    if target and done >= target:
        eta = "ETA done"
    elif rate > 0 and target:
        eta = f"ETA {duration((target - done) / rate * 60)}"
    else:
        eta = "ETA unknown"
    return (
        f"Progress: {done}/{target or '?'} notes{percent}, {rate:.1f}/min, {eta} | "
        f"listed {counts.listed}, fetched {counts.fetched}, images {counts.images}, "
        f"enriched {counts.enriched}, stored {counts.stored}, deferred {counts.deferred} | "
        f"Gemini {counts.gemini} requests, {counts.r429} 429s"
    )


class Progress:
    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self.started = 0.0
        self._loop: task.LoopingCall | None = None
        self._first: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        publish_target(crawler)
        interval = crawler.settings.getfloat("PROGRESS_INTERVAL")
        if interval <= 0:
            raise NotConfigured("PROGRESS_INTERVAL is 0")
        ext = cls(crawler, interval)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        from twisted.internet import reactor

        self.started = time.monotonic()
        self._loop = task.LoopingCall(self.log, spider)
        self._first = reactor.callLater(  # type: ignore[attr-defined]
            FIRST_AFTER_S, self._loop.start, self.interval, now=True
        )

    def log(self, spider: Spider) -> None:
        counts = Counts.of(self.crawler.stats.get_stats())  # type: ignore[union-attr]
        target = target_of(spider, counts, RunContext.of(self.crawler).backlog_due)
        line = progress_line(counts, target, time.monotonic() - self.started)
        logger.info(line, extra={"spider": spider})

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._first is not None and self._first.active():
            self._first.cancel()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
