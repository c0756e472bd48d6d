"""`scrapy crawl enrich [-a limit=N] [-a include_local=1] [-a worker=NAME]`: enrich the
stored backlog.

Reads the notes stored in MongoDB whose enrichment is due
(:func:`crawler.core.enrichment_state.backlog_query`: deferred or pending with
``next_attempt_at`` reached or unset, failed-but-retryable with ``next_attempt_at``
reached, never enriched, skipped because enrichment was off, or marked ``stale`` by
storage because the note changed after it was enriched) and yields them, rebuilt
as :class:`NoteItem` marked ``from_backlog`` (storage then writes no ``note_stats``
row: the note was not seen again), through the same item pipelines as a crawl: the
media pipeline leaves images already ``ok`` alone, the enrichment pipeline does the
work, the storage pipeline upserts the result. No page of the site is requested.

With ``-a include_local=1`` and Gemini configured, notes enriched by the local backend
(rapidocr + extractive summary) are upgraded too: the spider sets
``RunContext.upgrade_local``, which the enrichment pipeline reads. Each note's stored
comments go with its request (the enrichment pipeline reads them:
``pipelines/enrichment/stored_comments.py``).

Every run claims the notes it works on (:class:`BacklogClaims`: batches of
``2 × ENRICH_MAX_NOTES_PER_REQUEST``, claims lapse after ``ENRICH_CLAIM_TTL`` unless
renewed), so runs on one store never spend requests on the same note. ``-a
worker=NAME`` starts an extra worker beside the scheduled run: the worker is part of
its lease key (the overlap lease still stops a second copy of the same command), and a
worker stays while due notes are claimed by others, taking them over if their worker
dies. ``RunContext.backlog_due`` (the notes due at start) lets the enrichment pipeline
decide whether to pack several notes per request, and ``RunContext.backlog_claimed``
tells it that the notes handed out are claimed already.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import fields
from typing import Any, ClassVar

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler

from crawler.core.enrichment_state import EnrichmentState
from crawler.core.items import NoteImage, NoteInteract, NoteItem, NoteUser, NoteVideo
from crawler.core.run_context import RunContext
from crawler.core.timeutil import aware
from crawler.spiders.flags import parse_flag
from pipelines.enrichment import EnrichBackend, backend_of
from pipelines.enrichment.backlog import BacklogClaims
from pipelines.mongo import get_mongo

logger = logging.getLogger(__name__)

_WORKER = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")


def _build(cls: type, data: Any) -> Any:
    """Instance of dataclass ``cls`` from a stored mapping, ignoring unknown keys."""
    if data is None:
        return None
    names = {f.name for f in fields(cls)}
    return cls(**{k: aware(v) for k, v in data.items() if k in names})


def note_item_from_document(doc: Mapping[str, Any]) -> NoteItem:
    """Rebuild the item the storage pipeline stored (extra bookkeeping keys are ignored),
    marked ``from_backlog``.

    Raises ``KeyError``/``TypeError`` for a document that is not a stored note.
    """
    names = {f.name for f in fields(NoteItem)}
    values = {k: aware(v) for k, v in doc.items() if k in names}
    values["note_id"] = doc.get("note_id") or doc["_id"]
    values["user"] = _build(NoteUser, doc.get("user"))
    values["interact"] = _build(NoteInteract, doc.get("interact") or {})
    values["images"] = [_build(NoteImage, image) for image in doc.get("images") or []]
    values["video"] = _build(NoteVideo, doc.get("video"))
    values["tags"] = list(doc.get("tags") or [])
    values["enrichment"] = EnrichmentState.from_document(doc.get("enrichment"))
    values["from_backlog"] = True
    return NoteItem(**values)


class EnrichSpider(scrapy.Spider):
    name = "enrich"
    # Only stored notes flow through; image re-downloads need no browser.
    custom_settings: ClassVar[dict[str, Any]] = {"DOWNLOAD_HANDLERS": {}}

    def __init__(
        self,
        limit: str | int | None = None,
        include_local: str | None = None,
        worker: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            self.limit = int(limit) if limit not in (None, "") else None
        except ValueError:
            raise ValueError(
                f"-a limit= must be a positive number of notes, not {str(limit)[:80]!r}"
            ) from None
        if self.limit is not None and self.limit < 1:
            raise ValueError("-a limit= must be a positive number of notes")
        self.include_local = parse_flag("include_local", include_local)
        self.worker = (worker or "").strip() or None
        if self.worker is not None and not _WORKER.match(self.worker):
            raise ValueError(
                "-a worker= must be 1-64 letters, digits, '_', '-' or '.', "
                f"not {self.worker[:80]!r}"
            )
        self.claims: BacklogClaims | None = None
        # The run's arguments, as the xhs spider keeps its own: its lease key and its
        # crawl_runs record's ``args`` (crawler/extensions) say which backlog run it is.
        self.xhs_args = {
            "limit": "" if self.limit is None else str(self.limit),
            "include_local": "1" if self.include_local else "",
        }
        if self.worker is not None:  # an extra worker: its own lease key
            self.xhs_args["worker"] = self.worker

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> EnrichSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        backend = backend_of(crawler.settings)
        context = RunContext.of(crawler)
        context.upgrade_local = spider.include_local and backend is EnrichBackend.GEMINI
        context.backlog_due = 0  # counted at start; not None: this run drains the backlog
        if spider.include_local and not context.upgrade_local:
            logger.warning(
                "include_local ignored: Gemini is not the enrichment backend of this run"
            )
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(spider._item_done, signal=signal)
        crawler.signals.connect(spider._release_claims, signal=signals.spider_closed)
        return spider

    def _item_done(self, *args: Any, **kwargs: Any) -> None:
        if self.claims is not None:
            self.claims.done()

    async def _release_claims(self, *args: Any, **kwargs: Any) -> None:
        if self.claims is not None:
            await self.claims.close()

    async def start(self) -> AsyncIterator[Any]:
        db = (await get_mongo(self.crawler)).db
        settings = self.crawler.settings
        name = self.worker or "scheduled"
        context = RunContext.of(self.crawler)
        self.claims = BacklogClaims(
            db,
            f"{name}@{socket.gethostname()}:{os.getpid()}",
            ttl=settings.getfloat("ENRICH_CLAIM_TTL"),
            batch=2 * settings.getint("ENRICH_MAX_NOTES_PER_REQUEST"),
            include_local=context.upgrade_local,
            wait_for_others=self.worker is not None,
            limit=self.limit,
        )
        context.backlog_claimed = True
        context.backlog_due = await self.claims.due_count()
        stats = self.crawler.stats
        async for docs in self.claims.batches():
            stats.inc_value("enrich_backlog/claimed", len(docs))
            for doc in docs:
                try:
                    item = note_item_from_document(doc)
                except (KeyError, TypeError) as exc:
                    logger.warning("stored note %s cannot be rebuilt: %s", doc.get("_id"), exc)
                    stats.inc_value("enrich_backlog/bad_document")
                    self.claims.done()
                    continue
                stats.inc_value("enrich_backlog/notes")
                yield item

    def closed(self, reason: str) -> None:
        """How many stored notes this run handled (the run summary follows)."""
        stats = self.crawler.stats
        logger.info(
            "enrich: %d stored note(s) handled of %d due (%d enriched, %d deferred, %d failed, "
            "%d unreadable); %s",
            stats.get_value("enrich_backlog/notes", 0),
            RunContext.of(self.crawler).backlog_due or 0,
            stats.get_value("enrich/done", 0),
            stats.get_value("enrich/deferred", 0),
            sum(v for k, v in stats.get_stats().items() if k.startswith("enrich/failed/")),
            stats.get_value("enrich_backlog/bad_document", 0),
            reason,
        )
