"""The spider's side of comments: which notes need their thread read, and the request.

:meth:`ThreadReader.follow` is called with each parsed note. With comments off it
gives the note back. Otherwise it looks up the stored note (one batched ``$in`` query
for concurrent notes): when the stored thread was read in full, with the same limits,
while the note showed the same exact comment count as now, the note goes on without its
thread (``comments/threads_unchanged``: no browser is opened). A bucketed count ("100+",
"1.2万") may hide new comments: the same bucket holds for ``COMMENTS_REFRESH`` after the
read (a day by default), then the thread is read again; a note that shows no
comment at all is stored with an empty, complete thread (``comments/threads_empty``,
no browser either). Else it gives a
Chromium request for the note page, whose callback (:meth:`ThreadReader.parse`, via
the spider's ``parse_thread``) reads the thread (:mod:`crawler.comments.browser`) and
yields the note with ``comments``, ``comments_complete``, ``comments_reason`` and
``comments_crawled``. A page that fails to load still yields the note, with what it
has (nothing) and the reason: no note is dropped.

Stats: ``comments/threads_read``, ``comments/threads_incomplete``,
``comments/threads_unchanged``, ``comments/threads_empty``, ``comments/read`` (comments and replies kept),
``comments/pages``, ``comments/duplicates``, ``comments/skipped/<reason>``,
``comments/ignored/<reason>`` (hostile keys left unread: ``hostile_key``),
``comments/troubles/<reason>``, ``comments/reloads/<kind>``, ``comments/pages_closed``,
``comments/lookup_errors/<reason>``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
import scrapy
from pymongo.errors import PyMongoError
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.comments.browser import read_thread
from crawler.comments.pacing import Pacer
from crawler.comments.privacy import Pseudonymizer
from crawler.comments.settings import CommentLimits, CommentSettings
from crawler.comments.thread import COMMENT_PAGE_PATH, REPLY_PAGE_PATH, ThreadState
from crawler.core.antibot_pause import AntiBotPause
from crawler.core.items import CommentsCrawled, NoteItem
from crawler.core.names import NOTES
from crawler.core.timeutil import as_utc
from crawler.middlewares import stop_crawl
from crawler.spiders.pages import PageAnswers, browser_page_meta
from pipelines.incremental import BatchedLookup
from pipelines.mongo import error_reason, get_mongo

logger = logging.getLogger(__name__)

LOOKUP_PROJECTION = {"comments_crawled": 1, "comments_complete": 1}


def exact_count(item: NoteItem) -> int | None:
    """The note's shown comment count when it is exact ("342"); None for a bucketed
    lower bound ("100+", "1.2万"), which can hide new comments, or no count."""
    return item.interact.comments if (shown_count(item) or "").isdigit() else None


def shown_count(item: NoteItem) -> str | None:
    """The note's comment count as the page shows it ("342", "1.2万", "100+"), or None."""
    raw = (item.interact.raw or {}).get("comments")
    text = str(raw).strip() if raw is not None else ""
    return text or None


def thread_unchanged(
    stored: Mapping[str, Any] | None,
    note_count: int | None,
    limits: CommentLimits,
    *,
    shown: str | None = None,
    now: datetime | None = None,
    refresh: timedelta = timedelta(0),
) -> bool:
    """Whether the stored thread read still holds (pure): read in full, with the same
    limits, and the note shows the same exact count (``note_count``) as then; or, for a
    bucketed count (``note_count`` None), the same ``shown`` text as then, read less than
    ``refresh`` before ``now``."""
    if not stored or stored.get("comments_complete") is not True:
        return False
    crawled = stored.get("comments_crawled")
    if not isinstance(crawled, Mapping):
        return False
    if (
        crawled.get("wanted_comments") != limits.comments
        or crawled.get("wanted_replies") != limits.replies
    ):
        return False
    if note_count is not None:
        return crawled.get("note_count") == note_count
    read_at = crawled.get("at")
    if shown is None or crawled.get("shown") != shown or not isinstance(read_at, datetime):
        return False
    return (now or datetime.now(UTC)) - as_utc(read_at) < refresh


class ThreadReader:
    def __init__(
        self, crawler: Crawler, limits: CommentLimits, settings: CommentSettings | None
    ) -> None:
        if limits.enabled and settings is None:
            raise ValueError("ThreadReader: comments asked for without CommentSettings")
        self.crawler = crawler
        self.limits = limits
        self.settings = settings
        self.pseudonymizer = (
            Pseudonymizer(settings.privacy_key) if settings and settings.pseudonymize else None
        )
        self._captures = PageAnswers(lambda url: COMMENT_PAGE_PATH in url or REPLY_PAGE_PATH in url)
        self._lookups = BatchedLookup(self._fetch)
        # The crawl's one pause: a captcha here pauses the engine too, and a captcha
        # answered to the engine's requests quiets these pages.
        self._pacer = Pacer(AntiBotPause.of(crawler))

    @classmethod
    def from_crawler(cls, crawler: Crawler, limits: CommentLimits) -> ThreadReader:
        settings = CommentSettings.from_settings(crawler.settings) if limits.enabled else None
        return cls(crawler, limits, settings)

    def _count(self, key: str, n: int = 1) -> None:
        self.crawler.stats.inc_value(key, n)

    # --- which notes ------------------------------------------------------------------

    async def _fetch(self, note_ids: list[str]) -> list[Mapping[str, Any]]:
        handle = await get_mongo(self.crawler)
        timeout_s = max(0.5, handle.settings.server_selection_timeout_ms / 1000)
        with pymongo.timeout(timeout_s):
            cursor = handle.db[NOTES].find({"_id": {"$in": note_ids}}, LOOKUP_PROJECTION)
            return await cursor.to_list()

    async def follow(self, item: NoteItem) -> NoteItem | scrapy.Request:
        """The note itself (comments off, or its thread unchanged), or the request that
        reads its thread."""
        if not self.limits.enabled:
            return item
        if item.interact.comments == 0:  # nothing shown: an empty thread, no browser
            self._count("comments/threads_empty")
            return self._finish(item, ThreadState(item.note_id, self.limits), None, 0)
        try:
            stored = await self._lookups.get(item.note_id)
        except PyMongoError as exc:  # unknown: read the thread (work redone, never lost)
            self._count(f"comments/lookup_errors/{error_reason(exc)}")
            stored = None
        assert self.settings is not None  # limits.enabled: checked in __init__
        if thread_unchanged(
            stored,
            exact_count(item),
            self.limits,
            shown=shown_count(item),
            now=item.fetched_at,
            refresh=self.settings.refresh,
        ):
            self._count("comments/threads_unchanged")
            return item
        return scrapy.Request(
            item.url,
            callback=self.crawler.spider.parse_thread,
            errback=self.crawler.spider.thread_failed,
            dont_filter=True,  # the note page itself was fetched already (same note id)
            cb_kwargs={"item": item},
            meta=browser_page_meta("capture_comment_response", handle_httpstatus_list=[461, 471]),
        )

    # --- reading ----------------------------------------------------------------------

    async def capture(self, response: Any) -> None:
        """Playwright 'response' handler: keep the comment API answers the page receives."""
        await self._captures.capture(response)

    async def parse(self, response: Response, item: NoteItem) -> NoteItem:
        page = response.meta["playwright_page"]
        queue = self._captures.of(page)
        state = ThreadState(item.note_id, self.limits, fetched_at=item.fetched_at)
        assert self.settings is not None  # follow() asks for threads only when enabled
        try:
            outcome = await read_thread(
                page,
                queue,
                state,
                self.settings,
                first_status=response.status,
                label=f"note {item.note_id}",
                count=self._count,
                pacer=self._pacer,
            )
        finally:
            await self._close(page)
        if outcome.fatal:
            stop_crawl(self.crawler, outcome.fatal)
        return self._finish(item, state, state.incomplete_reason(outcome.stopped), outcome.reloads)

    async def failed(self, failure: Any) -> list[NoteItem]:
        """The note page did not load in the browser: the note goes on without comments."""
        request = failure.request
        page = request.meta.get("playwright_page")
        if page is not None:
            await self._close(page)
        item: NoteItem = request.cb_kwargs["item"]
        state = ThreadState(item.note_id, self.limits, fetched_at=item.fetched_at)
        reason = f"page_failed: {type(failure.value).__name__}: {str(failure.value)[:200]}"
        return [self._finish(item, state, reason, 0)]

    async def _close(self, page: Any) -> None:
        """Every thread's page is closed once read (memory stays flat over a crawl)."""
        self._captures.close(page)
        await page.close()
        self._count("comments/pages_closed")

    def _finish(
        self, item: NoteItem, state: ThreadState, reason: str | None, reloads: int
    ) -> NoteItem:
        comments = state.comments()
        if self.pseudonymizer is not None:
            comments = [self.pseudonymizer.comment(c) for c in comments]
        item.comments = comments
        item.comments_complete = reason is None
        item.comments_reason = reason
        item.comments_crawled = CommentsCrawled(
            note_count=exact_count(item),
            wanted_comments=self.limits.comments,
            wanted_replies=self.limits.replies,
            read=len(comments),
            pages=state.pages,
            reloads=reloads,
            skipped=dict(state.skipped),
            at=item.fetched_at or datetime.now(UTC),
            shown=shown_count(item),
        )
        self._count("comments/threads_read")
        self._count("comments/read", len(comments))
        self._count("comments/pages", state.pages)
        self._count("comments/duplicates", state.duplicates)
        for key, n in state.skipped.items():
            self._count(f"comments/skipped/{key}", n)
        for key, n in state.ignored.items():
            self._count(f"comments/ignored/{key}", n)
        if reason is not None:
            self._count("comments/threads_incomplete")
            logger.warning(
                "comments: note %s stored with %d comments, thread incomplete: %s",
                item.note_id,
                len(comments),
                reason[:300],
            )
        return item
