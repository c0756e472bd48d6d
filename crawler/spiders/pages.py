"""The request meta of a page read in Chromium: the note listings (xhs spider) and the
comment threads (crawler.comments.reader) open the same kind of page.

The page gets the session's cookies before navigation (``add_session_cookies`` in
crawler/spiders/xhs.py, named by its import path so the meta stays serializable for a
JOBDIR queue or Redis), a Playwright ``response`` handler (a spider method, by name)
that keeps the API answers the page receives, and stops waiting at DOMContentLoaded.
"""

from __future__ import annotations

from typing import Any

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
