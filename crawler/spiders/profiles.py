"""Creator profiles in a crawl (issue 15): which profiles to visit, when, and their items.

- ``-a users=A,B``: the listing visit (Chromium) opens each profile page anyway; the
  profile is read from that page's server state (:meth:`ProfileVisits.from_listing`)
  and yielded once the listing is scrolled, with the number of notes it listed.
- ``-a authors=1``: the profile of every note's author is visited too
  (:meth:`ProfileVisits.author_request`): once per run, and not when ``users`` says it
  was stored less than ``USER_REFRESH`` seconds ago (``last_crawled_at``, looked up in
  batches). That visit is a plain HTTP request: the server state is enough, Chromium is
  only needed to page through notes.
- Errors are data: a profile that cannot be read is counted under
  ``xhs/parse_error/profile/<reason>`` (the parser's typed reason) and logged once; a
  profile request that fails to download (no answer, an HTTP error after retries) under
  ``xhs/parse_error/profile/download_failed``; the crawl goes on. A failed freshness
  lookup means "visit" (``profiles/refresh_check_failed``).
- A profile read with a field cut to its cap (10,000 tags: 50 kept) is kept and stored
  with the field named in ``truncated``; its typed warning
  (:class:`crawler.parsing.users.ProfileTruncated`) is counted under
  ``xhs/parse_warning/profile/<reason>`` (``tags_truncated``, ``desc_truncated``).
- Distributed (``REDIS_URL``): the profiles of ``-a users=`` are marked seen in the
  shared duplicate filter at start (:meth:`ProfileVisits.claim_listed`), so another
  worker does not visit them again as a note's author.

Stats: ``profiles/requested`` (profile pages queued: ``-a users=`` listings and author
visits), ``profiles/visits`` (profile pages answered), ``profiles/parsed``,
``profiles/skipped_fresh``, plus the errors and warnings above.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pymongo
import scrapy
from pymongo.errors import PyMongoError
from scrapy.http import Response

from crawler.core.items import NoteItem, UserItem
from crawler.core.names import USERS
from crawler.core.timeutil import Clock, as_utc, utcnow
from crawler.parsing.errors import ParseError
from crawler.parsing.listing import ListingRef, refs_from_profile_state
from crawler.parsing.state import extract_initial_state
from crawler.parsing.users import parse_profile_page, profile_warnings
from crawler.spiders.flags import parse_flag
from pipelines.incremental import BatchedLookup
from pipelines.mongo import error_reason, get_mongo

logger = logging.getLogger(__name__)

USER_PREFIX = "user:"  # found_via of a `-a users=` listing


def parse_authors_arg(value: str | None) -> bool:
    """``-a authors=1|0`` (also true/false, yes/no); raises ValueError naming the argument."""
    return parse_flag("authors", value)


@dataclass(frozen=True)
class ProfileSettings:
    refresh: timedelta  # USER_REFRESH; zero or less: always visit

    @classmethod
    def from_settings(cls, settings: Any) -> ProfileSettings:
        return cls(refresh=timedelta(seconds=settings.getfloat("USER_REFRESH")))


class ProfileVisits:
    """One run's profile visits: the users seen, the listed notes, the freshness check."""

    def __init__(
        self,
        crawler: Any,
        settings: ProfileSettings,
        *,
        authors: bool,
        base_url: str,
        max_page_bytes: int,
        clock: Clock = utcnow,
    ) -> None:
        self.crawler = crawler
        self.settings = settings
        self.authors = authors
        self.base_url = base_url.rstrip("/")
        self.max_page_bytes = max_page_bytes
        self.clock = clock
        self.seen: set[str] = set()  # users visited (or scheduled) in this run
        self._listed: dict[str, set[str]] = {}  # `user:` listing → note ids it listed
        self._lookups = BatchedLookup(self._fetch)

    @classmethod
    def from_crawler(
        cls, crawler: Any, *, authors: bool, base_url: str, max_page_bytes: int
    ) -> ProfileVisits:
        return cls(
            crawler,
            ProfileSettings.from_settings(crawler.settings),
            authors=authors,
            base_url=base_url,
            max_page_bytes=max_page_bytes,
        )

    @property
    def stats(self) -> Any:
        return self.crawler.stats  # set once the crawl starts (after from_crawler)

    def claim(self, user_id: str) -> bool:
        """True the first time a user comes up in this run (then it is visited)."""
        if user_id in self.seen:
            return False
        self.seen.add(user_id)
        return True

    def profile_request(
        self, user_id: str, callback: Any = None, errback: Any = None
    ) -> scrapy.Request:
        """The plain request of a profile page (its URL is its duplicate-filter identity)."""
        return scrapy.Request(
            f"{self.base_url}/user/profile/{user_id}",
            callback=callback,
            errback=errback,
            cb_kwargs={"user_id": user_id},
            meta={"handle_httpstatus_list": [404, 461, 471]},
        )

    # --- profiles of `-a users=` listings ---------------------------------------------

    def claim_listed(self, user_id: str) -> None:
        """A ``-a users=`` profile, queued with its listing: claimed in this run, and its
        profile request marked seen in the scheduler's duplicate filter (shared in Redis
        with the other workers), so nobody visits it again as a note's author."""
        self.claim(user_id)
        self.stats.inc_value("profiles/requested")
        scheduler = getattr(self.crawler.engine, "scheduler", None)
        dupefilter = getattr(scheduler, "df", None)
        if dupefilter is not None:
            dupefilter.request_seen(self.profile_request(user_id))

    def count_listed(self, found_via: str, refs: list[ListingRef]) -> None:
        """Note the refs a profile listing gave (for the profile's ``notes_seen``)."""
        if found_via.startswith(USER_PREFIX):
            self._listed.setdefault(found_via, set()).update(ref.note_id for ref in refs)

    def from_listing(self, response: Response, found_via: str) -> UserItem | None:
        """The profile of a listing's page, once the listing is done (None: unreadable)."""
        listed = self._listed.pop(found_via, set())
        self.stats.inc_value("profiles/visits")
        item = self._read(response.body, response.url, found_via.removeprefix(USER_PREFIX))
        if item is not None:
            item.notes_seen = len(listed)
        return item

    def from_failed_listing(self, failure: Any) -> list[UserItem]:
        """A ``user:`` listing whose page came back as an HTTP error (the site answers an
        unknown user with a 404 page): its profile, or its typed reason counted."""
        found_via = str(failure.request.meta.get("found_via", ""))
        response = getattr(failure.value, "response", None)
        if not found_via.startswith(USER_PREFIX) or not isinstance(response, Response):
            return []
        item = self.from_listing(response, found_via)
        return [item] if item is not None else []

    # --- authors' profiles: plain requests ----------------------------------------------

    async def author_request(
        self, note: NoteItem, callback: Any, errback: Any = None
    ) -> scrapy.Request | None:
        """The profile request for a note's author (``-a authors=1``), or None: off, no
        author, already seen in this run, or stored within ``USER_REFRESH``. (Another
        worker's visit is the shared duplicate filter's to drop.)"""
        user = note.user
        if not self.authors or user is None or not user.user_id or not self.claim(user.user_id):
            return None
        if await self._fresh(user.user_id):
            self.stats.inc_value("profiles/skipped_fresh")
            return None
        self.stats.inc_value("profiles/requested")
        return self.profile_request(user.user_id, callback, errback)

    def parse(self, response: Response, user_id: str) -> UserItem | None:
        """The profile of a plain profile response (None: counted as a failure)."""
        self.stats.inc_value("profiles/visits")
        if response.status in (461, 471):
            self._failed("captcha", response.url, f"HTTP {response.status} after retries")
            return None
        item = self._read(response.body, response.url, user_id)
        if item is not None:
            item.notes_seen = self._first_notes(response.body)
        return item

    def failed(self, failure: Any) -> list[UserItem]:
        """The errback of a profile request: no answer, or an HTTP error after retries."""
        request = failure.request
        response = getattr(failure.value, "response", None)
        if isinstance(response, Response):
            self.stats.inc_value("profiles/visits")
            detail = f"HTTP {response.status}"
        else:
            detail = f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        self._failed("download_failed", request.url, detail)
        return []

    async def _fresh(self, user_id: str) -> bool:
        """Whether ``users`` holds this profile crawled less than USER_REFRESH ago."""
        if self.settings.refresh <= timedelta(0):
            return False
        try:
            stored = await self._lookups.get(user_id)
        except PyMongoError as exc:
            self.stats.inc_value("profiles/refresh_check_failed")
            logger.warning("profiles: freshness of %s unknown (%s): visiting", user_id,
                           error_reason(exc))  # fmt: skip
            return False
        last = stored.get("last_crawled_at") if stored else None
        if not isinstance(last, datetime):
            return False
        return self.clock() - as_utc(last) < self.settings.refresh

    async def _fetch(self, user_ids: list[str]) -> list[Mapping[str, Any]]:
        handle = await get_mongo(self.crawler)
        timeout_s = max(0.5, handle.settings.server_selection_timeout_ms / 1000)
        with pymongo.timeout(timeout_s):
            cursor = handle.db[USERS].find({"_id": {"$in": user_ids}}, {"last_crawled_at": 1})
            return await cursor.to_list()

    # --- reading ------------------------------------------------------------------------

    def _read(self, body: bytes, url: str, user_id: str) -> UserItem | None:
        try:
            item = parse_profile_page(
                body, url, user_id=user_id, fetched_at=self.clock(), max_bytes=self.max_page_bytes
            )
        except ParseError as exc:
            self._failed(exc.reason, url, str(exc))
            return None
        except Exception as exc:  # a parser bug on a hostile page must not stop the crawl
            logger.exception("profiles: unexpected error reading %s", url[:300])
            self._failed("internal_error", url, type(exc).__name__)
            return None
        self.stats.inc_value("profiles/parsed")
        warnings = profile_warnings(item)
        for warning in warnings:
            self.stats.inc_value(f"xhs/parse_warning/profile/{warning.reason}")
        if warnings:
            logger.warning("xhs: profile of %s kept with %s at %s", user_id,
                           ", ".join(w.reason for w in warnings), url[:300])  # fmt: skip
        return item

    def _first_notes(self, body: bytes) -> int | None:
        """How many notes the profile page itself lists (its first page)."""
        try:
            state = extract_initial_state(body, max_bytes=self.max_page_bytes)
            return len({ref.note_id for ref in refs_from_profile_state(state)})
        except ParseError:
            return None

    def _failed(self, reason: str, where: str, message: str) -> None:
        self.stats.inc_value(f"xhs/parse_error/profile/{reason}")
        logger.warning("xhs: profile %s at %s: %s", reason, where[:300], message[:500])
