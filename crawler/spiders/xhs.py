"""`scrapy crawl xhs`: notes by URL, by id, by keyword search and by user profile.

Note pages are plain HTTP requests (the server renders the note into the page).
Search and profile listings are opened in Chromium through scrapy-playwright: the
page's own JavaScript signs its API calls, we read the answers it receives and
schedule each note page with the listing's `xsec_token`. A change of the site's
signature algorithm therefore needs no change here.

(Over 400 lines: one spider class whose discovery paths (urls, note ids, keywords,
users, authors, comments) share its scheduling state and limits; the inputs of
`-a urls=`, author profiles and comment threads already live in their own modules.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.comments import CommentLimits, ThreadReader
from crawler.config import CrawlConfig
from crawler.core.antibot_pause import AntiBotPause
from crawler.core.items import NoteItem, UserItem
from crawler.core.run_context import RunContext
from crawler.extensions.report import remember_failure
from crawler.middlewares import FATAL_SIGNALS, Origin, origin_of, stop_crawl
from crawler.parsing.errors import ParseError, XsecTokenInvalid
from crawler.parsing.listing import ListingRef, parse_listing, refs_from_profile_state
from crawler.parsing.notes import parse_note_page
from crawler.parsing.signals import classify_response
from crawler.parsing.state import extract_initial_state
from crawler.spiders.inputs import (
    Inputs,
    NoteRef,
    ShortLink,
    fill_stored_tokens,
    note_from_redirect,
    parse_inputs,
)
from crawler.spiders.pages import Answer, PageAnswers, browser_page_meta
from crawler.spiders.profiles import ProfileVisits, parse_authors_arg
from crawler.spiders.run_args import check_run_args, share_run_args
from crawler.urls import note_created_at, note_url, split_arg
from pipelines.mongo import get_mongo

logger = logging.getLogger(__name__)

LISTING_API = re.compile(r"/api/sns/web/v\d+/(search/notes|user_posted)")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_USER_ID = re.compile(r"[0-9a-zA-Z]{6,40}")


# Login cookies for browser pages, by site origin (scheme, host, port): kept in the
# process, never in requests, so they never reach a JOBDIR queue or Redis (and no
# browser starts before it is needed).
_BROWSER_COOKIES: dict[Origin, list[dict[str, str]]] = {}


async def add_session_cookies(page: Any, request: scrapy.Request) -> None:
    """scrapy-playwright page init callback: the session cookies, before navigation,
    for pages of the site's own origin only."""
    origin = origin_of(request.url)
    cookies = _BROWSER_COOKIES.get(origin) if origin is not None else None
    if cookies:
        await page.context.add_cookies(cookies)


class ListingRetry(Exception):
    """A listing answer after which the page must be loaded again."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SpiderArgumentError(ValueError):
    """A spider argument that cannot be used; the message names it."""


def parse_since(since: str | None, max_age: str | None, now: datetime) -> datetime | None:
    """`-a since=2026-11-01[T…]` or `-a max_age=7d` → the oldest publish time wanted."""
    if since and max_age:
        raise SpiderArgumentError("give either since= or max_age=, not both")
    if since:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError as exc:
            raise SpiderArgumentError(f"since= is not an ISO date/time: {since!r}") from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if max_age:
        match = _DURATION.match(max_age.strip())
        if not match:
            raise SpiderArgumentError(f"max_age= must look like 90m, 12h or 7d: {max_age!r}")
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return None


class XhsSpider(scrapy.Spider):
    name = "xhs"

    def __init__(
        self,
        urls: str = "",
        note_ids: str = "",
        keywords: str = "",
        users: str = "",
        max_notes: str | int | None = None,
        since: str | None = None,
        max_age: str | None = None,
        comments: str | None = None,
        replies: str | None = None,
        authors: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.xhs_args = {
            name: value
            for name, value in {
                "urls": urls,
                "note_ids": note_ids,
                "keywords": keywords,
                "users": users,
                "max_notes": max_notes,
                "since": since,
                "max_age": max_age,
                "comments": comments,
                "replies": replies,
                "authors": authors,
            }.items()
            if value not in (None, "")
        }
        self._paste = (urls, note_ids)  # read with the settings (read_inputs)
        self.inputs = Inputs()
        self.keywords = split_arg(keywords)
        self.users = split_arg(users)
        try:
            self.max_notes = int(max_notes) if max_notes not in (None, "") else None
        except ValueError as exc:
            raise SpiderArgumentError(f"max_notes= must be a whole number: {max_notes!r}") from exc
        if self.max_notes is not None and self.max_notes < 1:
            raise SpiderArgumentError(f"max_notes= must be at least 1: {max_notes!r}")
        self.take_content_args(self.xhs_args)
        self.scheduled: set[str] = set()  # note ids this process scheduled
        self._captures = PageAnswers(lambda url: LISTING_API.search(url) is not None)

    def take_content_args(self, args: dict[str, Any]) -> None:
        """How notes are read: its own arguments, or a distributed run's (run_args.py)."""
        get = args.get
        self.published_since = parse_since(get("since"), get("max_age"), datetime.now(UTC))
        try:  # -a comments=N|all -a replies=M|all (crawler/comments/)
            self.comment_limits = CommentLimits.parse(get("comments"), get("replies"))
        except ValueError as exc:
            raise SpiderArgumentError(str(exc)) from exc
        try:  # -a authors=1: each note's author's profile too (crawler/spiders/profiles.py)
            self.visit_authors = parse_authors_arg(get("authors"))
        except ValueError as exc:
            raise SpiderArgumentError(str(exc)) from exc

    @property
    def seeding(self) -> bool:
        """Given discovery inputs: with REDIS_URL, the worker whose options are the run's."""
        return bool(self.inputs.usable or self.keywords or self.users)

    @classmethod
    def check_arguments(cls, settings: Any, spargs: dict[str, str]) -> None:
        """The crawl command's check before anything starts (SpiderArgumentError)."""
        spider = cls(**spargs)
        problem = spider.read_inputs(settings) or check_run_args(
            settings, cls.name, spider.xhs_args, seeding=spider.seeding
        )
        if problem:
            raise SpiderArgumentError(problem)

    def read_inputs(self, settings: Any) -> str | None:
        """Entries are checked once, with the settings (crawler/spiders/inputs.py): the
        usable ones are crawled, the others counted and shown in the run summary. The
        line saying why nothing is usable, if so: the crawl command refuses such a run
        (exit status 2) before it starts."""
        urls, note_ids = self._paste
        self.inputs = parse_inputs(
            urls, note_ids, short_hosts=settings.getlist("XHS_SHORT_LINK_HOSTS")
        )
        for user in self.users:
            if not _USER_ID.fullmatch(user):
                self.inputs.refuse(
                    user, "bad_argument", f"users= user id must be 6-40 letters/digits: {user!r}"
                )
        self.users = [user for user in self.users if _USER_ID.fullmatch(user)]
        listings = self.keywords or self.users
        if listings and not settings.get("XHS_COOKIES"):
            message = (
                "no XHS_COOKIES set: keywords= and users= listings need a logged-in session "
                "(XHS_COOKIES='a1=…; web_session=…' from a logged-in browser)"
            )
            if not self.inputs.usable:
                return message
            logger.warning("xhs: %s; only urls= and note_ids= are crawled", message)
            self.keywords, self.users = [], []
        if not (self.inputs.usable or self.keywords or self.users or settings.get("REDIS_URL")):
            # (with REDIS_URL, a run without arguments is a worker of the shared queue)
            usage = (
                "give urls=, note_ids=, keywords= or users= "
                "(e.g. scrapy crawl xhs -a keywords=面经 -a max_notes=20)"
            )
            first = self.inputs.refused[0].message if self.inputs.refused else usage
            return f"nothing to crawl: {first}"
        return None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> XhsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.read_inputs(crawler.settings)
        spider.config = CrawlConfig.from_settings(crawler.settings)
        host = urlsplit(spider.config.base_url).hostname or ""
        origin = origin_of(spider.config.base_url)
        assert origin is not None  # CrawlConfig checked XHS_BASE_URL
        _BROWSER_COOKIES[origin] = [
            {"name": name, "value": value, "domain": host, "path": "/"}
            for name, value in spider.config.cookies.items()
        ]
        logger.info(
            "xhs: base %s, cookie fingerprint %s",
            spider.config.base_url,
            spider.config.cookie_fingerprint,
        )
        try:  # REDIS_URL: publish (a seeder) or adopt the run's options (run_args.py)
            adopted = share_run_args(crawler, spider.name, spider.xhs_args, seeding=spider.seeding)
        except ValueError as exc:
            raise SpiderArgumentError(str(exc)) from exc
        if adopted:
            spider.xhs_args.update(adopted)
            spider.take_content_args(spider.xhs_args)
        spider.threads = ThreadReader.from_crawler(crawler, spider.comment_limits)
        spider.profiles = ProfileVisits.from_crawler(
            crawler,
            authors=spider.visit_authors,
            base_url=spider.config.base_url,
            max_page_bytes=spider.config.max_page_bytes,
        )
        return spider

    # --- start ----------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for refused in self.inputs.refused:
            self.record_failure(refused.reason, refused.entry, refused.message)
        refs = self.inputs.refs
        if any(not ref.token for ref in refs):  # the token stored with a known note
            refs, refused_now = await fill_stored_tokens(await self._store(), refs)
            self.refuse_at_start(refused_now)
            if not (refs or self.inputs.short_links or self.keywords or self.users):
                logger.error("xhs: nothing to crawl: %s", refused_now[0].message)
                RunContext.of(self.crawler).stop_reason = "usage"  # exit status 2
        for note_id, token, source, found_via in refs:
            request = self.note_request(note_id, token, source, found_via=found_via)
            if request is not None:
                yield request
        for link in self.inputs.short_links:  # followed once, by hand (parse_short_link)
            yield scrapy.Request(
                link.url,
                callback=self.parse_short_link,
                cb_kwargs={"link": link},
                dont_filter=True,
                meta={"dont_redirect": True, "handle_httpstatus_list": [301, 302, 303, 307, 308, 404, 410]},
            )  # fmt: skip
        base = self.config.base_url
        for keyword in self.keywords:
            url = f"{base}/search_result?keyword={quote(keyword)}&source=web_search_result_notes"
            yield self.listing_request(url, f"keyword:{keyword}")
        for user in self.users:
            self.profiles.claim_listed(user)  # its profile comes with the listing
            yield self.listing_request(f"{base}/user/profile/{user}", f"user:{user}")

    async def _store(self) -> Any:
        try:
            return (await get_mongo(self.crawler)).db
        except Exception as exc:  # tokenless references are refused, the rest goes on
            logger.warning("xhs: stored xsec_tokens not looked up: %s", str(exc)[:200])
            return None

    def refuse_at_start(self, refused: list[Any]) -> None:
        for entry in refused:
            self.inputs.refused.append(entry)
            self.record_failure(entry.reason, entry.entry, entry.message)

    def parse_short_link(self, response: Response, link: ShortLink) -> Any:
        """A share link's redirect: the note it names, crawled with the token it carries."""
        location = response.headers.get("Location", b"").decode("latin-1")
        target = note_from_redirect(link, response.status, response.urljoin(location))
        if not isinstance(target, NoteRef):
            self.refuse_at_start([target])
            return None
        return self.note_request(
            target.note_id, target.token, target.source, found_via="short_link"
        )

    # --- note pages -----------------------------------------------------------------

    def budget_left(self) -> bool:
        return self.max_notes is None or len(self.scheduled) < self.max_notes

    def note_request(
        self, note_id: str, token: str | None, source: str | None, *, found_via: str
    ) -> scrapy.Request | None:
        """A request for a note page, or None when it is a duplicate or over max_notes."""
        if note_id in self.scheduled or not self.budget_left():
            return None
        self.scheduled.add(note_id)
        return scrapy.Request(
            note_url(self.config.base_url, note_id, token, source),
            callback=self.parse_note,
            meta={
                "note_id": note_id,
                "found_via": found_via,
                "dont_redirect": True,  # a redirect to the home page means a bad token
                "handle_httpstatus_list": [301, 302, 303, 307, 404, 461, 471],
            },
        )

    async def parse_note(self, response: Response) -> Any:
        note_id = response.meta["note_id"]
        if 300 <= response.status < 400:
            location = response.headers.get("Location", b"").decode("latin-1")
            self.record_failure(
                XsecTokenInvalid.reason,
                response.url,
                f"redirected to {location or 'the home page'}: missing or wrong xsec_token",
            )
            return
        if response.status in (461, 471):
            self.record_failure("captcha", response.url, f"HTTP {response.status} after retries")
            return
        try:
            item = parse_note_page(
                response.body,
                response.url,
                note_id=note_id,
                original_templates=self.config.original_templates,
                max_bytes=self.config.max_page_bytes,
            )
        except ParseError as exc:
            self.record_failure(exc.reason, response.url, str(exc))
            return
        if self.published_since and item.published_at and item.published_at < self.published_since:
            self.crawler.stats.inc_value("xhs/skipped_older_than_since")
            return
        item.fetched_at = datetime.now(UTC)
        item.found_via = response.meta.get("found_via")
        self.crawler.stats.inc_value("xhs/notes_parsed")
        profile = await self.profiles.author_request(item, self.parse_profile, self.profile_failed)
        if profile is not None:  # -a authors=1 (crawler/spiders/profiles.py)
            yield profile
        yield await self.threads.follow(item)  # the item, or the request reading its thread

    # --- comment threads in the browser (crawler/comments/) -----------------------------

    async def parse_thread(self, response: Response, item: NoteItem) -> AsyncIterator[Any]:
        yield await self.threads.parse(response, item)

    async def thread_failed(self, failure: Any) -> list[NoteItem]:
        return await self.threads.failed(failure)

    async def capture_comment_response(self, response: Any) -> None:
        await self.threads.capture(response)

    def parse_profile(self, response: Response, user_id: str) -> list[UserItem]:
        """A profile-only visit (plain request): the author's profile from its state."""
        item = self.profiles.parse(response, user_id)
        return [item] if item is not None else []

    def profile_failed(self, failure: Any) -> list[UserItem]:
        """A profile request's errback (counted: xhs/parse_error/profile/download_failed)."""
        return self.profiles.failed(failure)

    def record_failure(self, reason: str, where: str, message: str) -> None:
        """Count a failure under its reason and log it once, with the URL (kept for the
        run report's failures table: crawler/extensions/report.py)."""
        self.crawler.stats.inc_value(f"xhs/parse_error/{reason}")
        logger.warning("xhs: %s at %s: %s", reason, where[:300], message[:500])
        remember_failure(self.crawler, reason, where, message)

    # --- listings in the browser --------------------------------------------------------

    def listing_request(self, url: str, found_via: str) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_listing,
            errback=self.listing_failed,
            dont_filter=True,
            meta=browser_page_meta("capture_api_response", found_via=found_via),
        )

    async def capture_api_response(self, response: Any) -> None:
        """Playwright 'response' handler: keep the listing API answers the page receives."""
        await self._captures.capture(response)

    async def parse_listing(self, response: Response) -> AsyncIterator[Any]:
        page = response.meta["playwright_page"]
        found_via = response.meta["found_via"]
        queue = self._captures.of(page)
        try:
            if urlsplit(response.url).path.startswith("/login"):
                # The site sends a listing without a valid session to its login page.
                self.crawler.stats.inc_value("antibot/cookie_expired")
                stop_crawl(self.crawler, "cookie_expired")
                return
            if found_via.startswith("user:"):
                for request in self._requests_from_profile(response, found_via):
                    yield request
            async for request in self._scroll_listing(page, queue, found_via):
                yield request
            if found_via.startswith("user:"):  # the profile, with the notes it listed
                profile = self.profiles.from_listing(response, found_via)
                if profile is not None:
                    yield profile
        finally:
            self._captures.close(page)
            await page.close()

    def _requests_from_profile(self, response: Response, found_via: str) -> list[scrapy.Request]:
        try:
            state = extract_initial_state(response.body, max_bytes=self.config.max_page_bytes)
            refs = refs_from_profile_state(state)
        except ParseError as exc:
            self.record_failure(exc.reason, response.url, str(exc))
            return []
        return self._requests_for_refs(refs, found_via, "pc_user")

    def _requests_for_refs(
        self, refs: list[ListingRef], found_via: str, source: str
    ) -> list[scrapy.Request]:
        requests = []
        for ref in refs:
            created = note_created_at(ref.note_id)
            if self.published_since and created and created < self.published_since:
                self.crawler.stats.inc_value("xhs/skipped_older_than_since")
                continue
            request = self.note_request(ref.note_id, ref.xsec_token, source, found_via=found_via)
            if request is not None:
                requests.append(request)
        self.crawler.stats.inc_value("xhs/listing_refs", len(refs))
        self.profiles.count_listed(found_via, refs)
        return requests

    async def _scroll_listing(
        self, page: Any, queue: asyncio.Queue[Answer], found_via: str
    ) -> AsyncIterator[scrapy.Request]:
        """Read the page's API answers and scroll for more until the end or max_notes.

        Captchas, rotated signatures, 5xx, broken answers and a call that hangs make
        the page load again (at most DISCOVERY_MAX_RELOADS times): the page's own
        script may never call again after them. Notes seen twice are scheduled once.
        """
        source = "pc_search" if found_via.startswith("keyword:") else "pc_user"
        idle_rounds = reloads = 0
        more_expected = False  # the page's last answer said has_more

        async def reload(kind: str, detail: str) -> bool:
            nonlocal reloads
            reloads += 1
            if reloads > self.config.discovery_max_reloads:
                self.record_failure(kind, found_via, f"listing gave up after reloads: {detail}")
                return False
            self.crawler.stats.inc_value(f"xhs/listing_reloads/{kind}")
            if kind == "captcha":  # the crawl's one pause: engine and comment pages too
                pause = AntiBotPause.of(self.crawler)
                pause.hold("listing")
                await pause.wait()
            logger.info("xhs: %s on %s, reloading the page", kind, found_via)
            await page.reload(wait_until="domcontentloaded")
            return True

        while self.budget_left():
            try:
                _url, status, body = await asyncio.wait_for(queue.get(), self.config.discovery_wait)
            except TimeoutError:
                idle_rounds += 1
                if idle_rounds < self.config.discovery_idle_rounds:
                    await self._scroll(page)
                    continue
                if not more_expected:
                    return  # the page stopped asking: nothing more to load
                idle_rounds, more_expected = 0, False
                if not await reload("stalled", "the page's last call got no answer"):
                    return
                continue
            idle_rounds = 0
            signal = classify_response(status, {}, body)
            if signal is not None and signal.kind in FATAL_SIGNALS:
                self.crawler.stats.inc_value(f"antibot/{signal.kind}")
                stop_crawl(self.crawler, signal.kind)
                return
            try:
                if signal is not None:
                    self.crawler.stats.inc_value(f"antibot/{signal.kind}")
                    raise ListingRetry(signal.kind, signal.detail)
                if status >= 500:
                    raise ListingRetry(f"http_{status}", f"the listing API answered {status}")
                data = json.loads(body)
                refs = parse_listing(data)
            except (ListingRetry, ValueError, ParseError) as exc:
                if not await reload(getattr(exc, "reason", "listing_malformed"), str(exc)):
                    return
                continue
            for request in self._requests_for_refs(refs, found_via, source):
                yield request
            more_expected = bool(data.get("data", {}).get("has_more", False))
            if not more_expected:
                return
            await self._scroll(page)

    async def _scroll(self, page: Any) -> None:
        await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")

    async def listing_failed(self, failure: Any) -> list[UserItem]:
        request = failure.request
        page = request.meta.get("playwright_page")
        if page is not None:
            self._captures.close(page)
            await page.close()
        self.record_failure("listing_failed", request.url, repr(failure.value)[:300])
        return self.profiles.from_failed_listing(failure)  # a profile's typed reason
