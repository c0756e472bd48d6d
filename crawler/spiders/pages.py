"""Pages read in Chromium: the note listings (xhs spider) and the comment threads
(crawler.comments.reader) open the same kind of page and read the same way.

:func:`browser_page_meta` is the request meta. The page gets the session's cookies before navigation (``add_session_cookies`` in
crawler/spiders/xhs.py, named by its import path so the meta stays serializable for a
JOBDIR queue or Redis), a Playwright ``response`` handler (a spider method, by name)
that keeps the API answers the page receives, and stops waiting at DOMContentLoaded.
:class:`PageAnswers` is what that handler keeps: the wanted answers of each open page,
in a queue per page, until the page is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

# One API answer a page received: (url, HTTP status, body).
Answer = tuple[str, int, bytes]

SESSION_COOKIES_CALLBACK = "crawler.spiders.xhs.add_session_cookies"


def browser_page_meta(response_handler: str, **extra: Any) -> dict[str, Any]:
    """Meta for a Chromium page whose ``response`` events go to the spider method
    ``response_handler``; ``extra`` keys are added (e.g. ``handle_httpstatus_list``)."""
    return {
        "playwright": True,
        "playwright_include_page": True,
        "playwright_page_init_callback": SESSION_COOKIES_CALLBACK,
        "playwright_page_event_handlers": {"response": response_handler},
        "playwright_page_goto_kwargs": {"wait_until": "domcontentloaded"},
        **extra,
    }


class PageAnswers:
    """The API answers each open page received whose URL ``wanted`` accepts."""

    def __init__(self, wanted: Callable[[str], bool]) -> None:
        self._wanted = wanted
        self._queues: dict[Any, asyncio.Queue[Answer]] = {}

    async def capture(self, response: Any) -> None:
        """Playwright 'response' handler: keep a wanted answer in its page's queue."""
        if not self._wanted(response.url):
            return
        try:
            body = await response.body()
        except Exception:  # the page navigated away (a reload): that answer is moot
            return
        self.of(response.frame.page).put_nowait((response.url, response.status, body))

    def of(self, page: Any) -> asyncio.Queue[Answer]:
        """The queue of ``page``'s answers (created on first use)."""
        return self._queues.setdefault(page, asyncio.Queue())

    def close(self, page: Any) -> None:
        """Forget ``page`` (it is being closed)."""
        self._queues.pop(page, None)
