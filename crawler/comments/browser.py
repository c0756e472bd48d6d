"""Reading a note's thread in Chromium through the page's own JavaScript.

The note page loads its first comment page itself; :func:`read_thread` then acts as a
reader would and lets the page do the calls (and sign them): it scrolls the comment
list to its end for the next page, and clicks the "展开 N 条回复" / "展开更多回复"
controls, found by their text, for the replies of the roots it still wants. Every
comment API answer the page receives (put on ``answers`` by the page's ``response``
handler) goes to :class:`~crawler.comments.thread.ThreadState`.

Anti-bot reactions are those of the listings: a captcha pauses the whole crawl for
``cooldown`` seconds, the engine's requests and every comment page (the pause a
captcha answered to the engine's requests starts too; the pages wait it out before
each action), and spaces the pages' actions wider
(:class:`~crawler.comments.pacing.Pacer`), then loads the page again (a captcha
on a reply page only clicks its control again: the list is still alive); a rejected
signature (the site rotated it) loads the page again at once (its new script signs
with the new version); a page that stopped asking (``COMMENTS_WAIT`` without an
answer, three times) is loaded again; at most ``COMMENTS_MAX_RELOADS`` times. A
reload starts the list from its first page: what was read before is recognised by id
and not kept twice. Reading also stops after ``COMMENTS_MAX_SECONDS`` or
``COMMENTS_MAX_PAGES`` answers; the caller stores what was read with the reason. The only DOM conventions used are the reply controls' text and
the comment elements' ``id="comment-<id>"`` (both as on the real site).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from crawler.comments.pacing import Pacer
from crawler.comments.settings import CommentSettings
from crawler.comments.thread import Answer, ThreadState, Trouble

logger = logging.getLogger(__name__)

IDLE_ROUNDS = 3  # actions without an answer before the page counts as stalled
MAX_CLICKS = 5  # reply controls clicked at once

# Scroll the comment list (the nearest scrollable ancestor of the last comment; the
# window when there is none) to its end, and tell the page it scrolled.
_SCROLL_JS = """() => {
  const items = document.querySelectorAll('[id^="comment-"]');
  let el = items.length ? items[items.length - 1].parentElement : null;
  while (el && !(el.scrollHeight > el.clientHeight &&
                 /(auto|scroll)/.test(getComputedStyle(el).overflowY))) el = el.parentElement;
  if (el) { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); }
  else { window.scrollTo(0, document.body.scrollHeight); window.dispatchEvent(new Event('scroll')); }
}"""

# Click the reply controls (elements whose own text starts with 展开 and speaks of 回复)
# of the wanted roots. A control's root is the first known root among the comment
# elements of its nearest ancestor that holds one. Returns the roots clicked.
_CLICK_JS = """([wanted, roots, most]) => {
  const want = new Set(wanted), known = new Set(roots), clicked = [];
  const found = document.evaluate(
    "//*[starts-with(normalize-space(text()), '展开') and contains(., '回复')]",
    document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
  for (let i = 0; i < found.snapshotLength && clicked.length < most; i++) {
    const control = found.snapshotItem(i);
    let node = control.parentElement, root = null;
    while (node && root === null) {
      for (const el of node.querySelectorAll('[id^="comment-"]')) {
        const id = el.id.slice(8);
        if (known.has(id)) { root = id; break; }
      }
      node = node.parentElement;
    }
    if (root !== null && want.has(root) && !clicked.includes(root)) {
      control.click();
      clicked.push(root);
    }
  }
  return clicked;
}"""

_SHOWN_JS = "id => document.getElementById('comment-' + id) !== null"


class Page(Protocol):
    """What is used of a Playwright page."""

    async def evaluate(self, expression: str, arg: Any = None) -> Any: ...
    async def wait_for_function(
        self, expression: str, *, arg: Any = None, timeout: float
    ) -> Any: ...
    async def reload(self, *, wait_until: str) -> Any: ...


@dataclass
class ReadOutcome:
    """How reading ended: ``stopped`` names why it ended before the thread did
    (None: read as far as asked), ``fatal`` a signal that must stop the whole crawl."""

    stopped: str | None = None
    fatal: str | None = None
    reloads: int = 0


async def read_thread(
    page: Page,
    answers: asyncio.Queue[tuple[str, int, bytes]],
    state: ThreadState,
    settings: CommentSettings,
    *,
    first_status: int = 200,
    label: str = "",
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    count: Callable[[str], None] = lambda key: None,
    pacer: Pacer | None = None,
) -> ReadOutcome:
    """Read ``state``'s thread on ``page`` until done or a bound is hit (see module doc).

    ``answers`` holds ``(url, status, body)`` of the page's comment API answers;
    ``first_status`` is the page load's own status (461: a captcha page).
    """
    outcome = ReadOutcome()
    pacer = pacer or Pacer(monotonic=monotonic, sleep=sleep)
    deadline = monotonic() + settings.max_seconds
    idle = 0
    pending: set[str] = set()  # roots clicked, answer not seen yet
    page_asked = False  # scrolled for the next page, answer not seen yet

    async def reload(kind: str, detail: str) -> bool:
        nonlocal idle, page_asked
        if outcome.reloads >= settings.max_reloads:
            outcome.stopped = f"reload_limit: {kind} ({detail[:200]})"
            return False
        outcome.reloads += 1
        count(f"comments/reloads/{kind}")
        if kind == "captcha":
            pacer.captcha(settings.cooldown)
        await pacer.turn()
        logger.info("comments: %s on %s, reloading the page", kind, label)
        response = await page.reload(wait_until="domcontentloaded")
        idle, page_asked = 0, False
        pending.clear()
        status = getattr(response, "status", 200)
        if status in (461, 471):
            count("antibot/captcha")
            return await reload("captcha", f"the page load answered {status}")
        return True

    async def act() -> None:
        nonlocal page_asked
        await pacer.turn()
        if state.last_ids:  # let the page show what it received before acting on it
            with contextlib.suppress(Exception):
                await page.wait_for_function(_SHOWN_JS, arg=state.last_ids[-1], timeout=2000)
        wanted = [r for r in state.roots_to_expand() if r not in pending]
        if wanted and len(pending) < MAX_CLICKS:
            clicked = await page.evaluate(
                _CLICK_JS, [wanted, list(state.roots), MAX_CLICKS - len(pending)]
            )
            pending.update(clicked)
        if state.wants_roots and not page_asked:
            await page.evaluate(_SCROLL_JS)
            page_asked = True

    if first_status in (461, 471):
        count("antibot/captcha")
        if not await reload("captcha", f"the page load answered {first_status}"):
            return outcome
    while not state.done:
        if monotonic() > deadline:
            outcome.stopped = f"time_limit: {settings.max_seconds:g} s"
            return outcome
        if state.pages >= settings.max_pages:
            outcome.stopped = f"page_limit: {settings.max_pages} answers"
            return outcome
        try:
            url, status, body = await asyncio.wait_for(answers.get(), settings.wait)
        except TimeoutError:
            if pacer.holding:  # quiet on purpose: not a stalled page
                await act()
                continue
            idle += 1
            pending.clear()
            page_asked = False
            if idle >= IDLE_ROUNDS and not await reload(
                "stalled", "the page's last call got no answer"
            ):
                return outcome
            await act()
            continue
        answer = Answer.of(url, status, body)
        if answer is None:
            continue
        idle = 0
        if answer.kind == "page":
            page_asked = False
        elif answer.root_comment_id:
            pending.discard(answer.root_comment_id)
        trouble = state.take(answer)
        if trouble is not None and trouble.action == "cooldown":
            count(f"comments/troubles/{trouble.reason}")
            count("antibot/captcha")
            pacer.captcha(settings.cooldown)
        elif trouble is not None and not await _react(trouble, outcome, reload, count):
            return outcome
        elif trouble is None:
            pacer.relax()
        if not state.done:
            await act()
    return outcome


async def _react(
    trouble: Trouble,
    outcome: ReadOutcome,
    reload: Callable[[str, str], Awaitable[bool]],
    count: Callable[[str], None],
) -> bool:
    """Whether reading goes on after ``trouble``."""
    count(f"comments/troubles/{trouble.reason}")
    if trouble.action == "fatal":
        outcome.fatal = trouble.reason
        outcome.stopped = trouble.reason
        return False
    if trouble.action == "stop":
        outcome.stopped = f"{trouble.reason}: {trouble.detail[:200]}"
        return False
    if trouble.action == "reload":
        if trouble.reason == "captcha":
            count("antibot/captcha")
        return await reload(trouble.reason, trouble.detail)
    return True
