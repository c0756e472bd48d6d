"""One note's thread as its answers arrive (pure: no browser, no Scrapy).

The browser side (:mod:`crawler.comments.browser`) hands every comment API answer the
page received to :meth:`ThreadState.take`, and asks the state what is still wanted:
more top-level pages (:attr:`ThreadState.wants_roots`), the replies of which roots
(:meth:`ThreadState.roots_to_expand`), whether it is :attr:`ThreadState.done`.

Rules:

- Comments are kept by id, first sighting wins: a page read again after a reload, or
  a reply repeated at the tail of a long thread, adds nothing (``duplicates``).
- ``comments=N`` keeps the first N top-level comments in the API's order;
  ``replies=M`` the first M replies of each (inline ones first). The thread is done
  when the top-level pages said ``has_more: false`` (or N are kept) and every kept
  root's replies did (or M are kept).
- A root whose replies were read to their end stays finished: the inline
  ``sub_comment_has_more`` of a page read again does not open it again.
- An answer that cannot be used says so as a :class:`Trouble` (``reason`` is a stats
  key): the site's anti-bot signals (``captcha``, ``signature_rejected`` and the fatal
  ones), ``http_<status>``, a ``code != 0`` answer (``api_error``) and a broken one
  (``response_malformed``). A bad entry inside a good answer is left out and counted in
  ``skipped`` by its parser reason (``comment_malformed``, ``reply_orphan``, …); a
  hostile key inside a kept entry (``$where``, ``a.b``) is never read and is counted in
  ``ignored`` (``hostile_key``): the entry is whole without it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from crawler.comments.settings import CommentLimits
from crawler.core.items import CommentItem
from crawler.parsing.comments import parse_comment_page, parse_reply_page
from crawler.parsing.errors import CommentDuplicate, ParseError, ResponseMalformed
from crawler.parsing.signals import classify_response
from crawler.parsing.values import safe_id

COMMENT_PAGE_PATH = "/api/sns/web/v2/comment/page"
REPLY_PAGE_PATH = "/api/sns/web/v2/comment/sub/page"
FATAL_KINDS = frozenset({"cookie_expired", "ip_blocked", "account_flagged"})
# Signals after which no reload helps this note.
FINAL_KINDS = frozenset({"xsec_invalid", "note_gone"})


@dataclass(frozen=True, slots=True)
class Answer:
    """A comment API answer as the page received it."""

    kind: Literal["page", "replies"]
    status: int
    body: bytes
    root_comment_id: str | None = None  # the reply page's root (from the request URL)

    @classmethod
    def of(cls, url: str, status: int, body: bytes) -> Answer | None:
        """The answer of a comment API ``url``; None for any other URL."""
        parts = urlsplit(url)
        if parts.path == COMMENT_PAGE_PATH:
            return cls("page", status, body)
        if parts.path == REPLY_PAGE_PATH:
            root = (parse_qs(parts.query).get("root_comment_id") or [""])[0]
            return cls("replies", status, body, safe_id(root))
        return None


@dataclass(frozen=True, slots=True)
class Trouble:
    """Why an answer was not usable. ``action`` says what the reader does next:
    ``reload`` the page (its script stopped asking), ``retry`` the same action,
    ``cooldown`` then retry it, ``stop`` reading this note, or ``fatal``: stop the crawl."""

    reason: str
    detail: str
    action: Literal["reload", "retry", "cooldown", "stop", "fatal"]


class ThreadState:
    def __init__(
        self, note_id: str, limits: CommentLimits, *, fetched_at: datetime | None = None
    ) -> None:
        if not limits.enabled:
            raise ValueError("ThreadState needs comments= above 0 or all")
        self.note_id = note_id
        self.limits = limits
        self.fetched_at = fetched_at
        self.roots: dict[str, CommentItem] = {}
        self.replies: dict[str, dict[str, CommentItem]] = {}
        self._open: set[str] = set()  # kept roots with replies left to read
        self._finished: set[str] = set()  # roots read to their end (or given up)
        self._roots_done = False
        self.pages = 0
        self.duplicates = 0
        self.skipped: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()  # keys left unread in kept answers, by reason
        self.troubles: Counter[str] = Counter()
        self.failed_roots: dict[str, str] = {}  # root → reason its replies stopped
        self.last_ids: list[str] = []  # ids the last good answer added (the DOM shows them)

    # --- what is wanted --------------------------------------------------------------

    @property
    def wants_roots(self) -> bool:
        return not self._roots_done and self.limits.take_root(len(self.roots))

    def roots_to_expand(self) -> list[str]:
        """Kept roots whose replies go on and are still wanted, in thread order."""
        return [
            root
            for root in self.roots
            if root in self._open and self.limits.take_reply(len(self.replies[root]))
        ]

    @property
    def done(self) -> bool:
        return not self.wants_roots and not self.roots_to_expand()

    def comments(self) -> list[CommentItem]:
        """Each kept root followed by its kept replies, in the order read."""
        out: list[CommentItem] = []
        for root_id, root in self.roots.items():
            out.append(root)
            out.extend(self.replies[root_id].values())
        return out

    # --- answers ---------------------------------------------------------------------

    def take(self, answer: Answer) -> Trouble | None:
        """Fold one answer in; a :class:`Trouble` when it could not be used."""
        self.last_ids = []
        signal = classify_response(answer.status, {}, answer.body)
        if signal is not None:
            if signal.kind in FATAL_KINDS:
                action = "fatal"
            elif signal.kind in FINAL_KINDS:
                action = "stop"
            elif signal.kind == "captcha" and answer.kind == "replies":
                action = "cooldown"  # the reply control can be clicked again after it
            else:
                action = "reload"  # the list stopped, or the page's script signs stale
            return self._trouble(signal.kind, signal.detail, action)
        if answer.status >= 500:
            return self._trouble(
                f"http_{answer.status}", f"the comment API answered {answer.status}", "reload"
            )
        self.pages += 1
        try:
            if answer.kind == "page":
                self._take_page(answer)
            else:
                self._take_replies(answer)
        except ResponseMalformed as exc:
            # Truncated or not an object: the page's script asks again on the next action.
            return self._trouble(exc.reason, str(exc), "retry")
        except ParseError as exc:
            if answer.kind == "replies" and answer.root_comment_id:
                # The site refuses this root's replies: the rest of the thread goes on.
                self._finish(answer.root_comment_id, f"{exc.reason}: {exc}"[:300])
                return self._trouble(exc.reason, str(exc), "retry")
            # A code != 0 answer stopped the page's list: it must be loaded again.
            return self._trouble(exc.reason, str(exc), "reload")
        return None

    def _trouble(self, reason: str, detail: str, action: str) -> Trouble:
        self.troubles[reason] += 1
        return Trouble(reason, detail[:500], action)  # type: ignore[arg-type]

    def _count_skipped(self, skipped: list[ParseError]) -> None:
        for error in skipped:
            if isinstance(error, CommentDuplicate):
                self.duplicates += 1
            else:
                self.skipped[error.reason] += 1

    def _take_page(self, answer: Answer) -> None:
        page = parse_comment_page(
            answer.body, note_id=self.note_id, fetched_at=self.fetched_at, http_status=answer.status
        )
        self._count_skipped(page.skipped)
        self.ignored.update(page.ignored)
        threads = {t.root_comment_id: t for t in page.threads}
        for comment in page.comments:
            root_id = comment.root_comment_id
            if root_id is None:
                if comment.comment_id in self.roots:
                    self.duplicates += 1
                    continue
                if not self.limits.take_root(len(self.roots)):
                    continue
                self.roots[comment.comment_id] = comment
                self.replies[comment.comment_id] = {}
                self.last_ids.append(comment.comment_id)
                thread = threads.get(comment.comment_id)
                if thread is not None and thread.has_more:
                    self._open.add(comment.comment_id)
            elif root_id in self.roots:
                self._keep_reply(root_id, comment)
        if not page.has_more:
            self._roots_done = True

    def _take_replies(self, answer: Answer) -> None:
        root_id = answer.root_comment_id
        if root_id is None:
            raise ParseError("a reply page without a root_comment_id in its request")
        page = parse_reply_page(
            answer.body,
            note_id=self.note_id,
            root_comment_id=root_id,
            fetched_at=self.fetched_at,
            http_status=answer.status,
        )
        self._count_skipped(page.skipped)
        self.ignored.update(page.ignored)
        if root_id not in self.roots:
            return  # a root not kept (over comments=N)
        for reply in page.replies:
            self._keep_reply(root_id, reply)
        if not page.has_more:
            self._finish(root_id)

    def _keep_reply(self, root_id: str, reply: CommentItem) -> None:
        kept = self.replies[root_id]
        if reply.comment_id in kept:
            self.duplicates += 1
            return
        if not self.limits.take_reply(len(kept)):
            return
        kept[reply.comment_id] = reply
        self.last_ids.append(reply.comment_id)

    def _finish(self, root_id: str, failure: str | None = None) -> None:
        self._open.discard(root_id)
        self._finished.add(root_id)
        if failure is not None:
            self.failed_roots[root_id] = failure

    # --- the verdict -----------------------------------------------------------------

    def incomplete_reason(self, stopped: str | None) -> str | None:
        """Why the thread is not read in full (None: it is). ``stopped`` is why reading
        ended early, if it did (``time_limit``, ``page_limit``, ``reload_limit:…``)."""
        if stopped is not None:
            return stopped
        if self.failed_roots:
            root, why = next(iter(self.failed_roots.items()))
            return f"replies of {len(self.failed_roots)} comment(s) not read (first {root}: {why})"
        if self.skipped:
            shown = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
            return f"entries left out: {shown}"
        return None
