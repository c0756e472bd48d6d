"""The analyst's window: a read-only, server-rendered web app over the store.

``python -m crawler.web [--host H] [--port P]``; in code, ``create_app(WebConfig(...))``
gives the Starlette app. Pages: notes (search, filters, sort, paging), a note (images
from IMAGES_STORE with OCR text and captions, enrichment, comments, interaction
history), creators and their growth, crawl runs with their reports, Gemini quota.
Private modules: ``config`` (settings, binding rule), ``auth`` (WEB_TOKEN), ``queries``
(list filters → a predicate over list rows), ``listing`` (the notes list from an
in-memory listing of every note), ``reads`` (the other pages' queries), ``files`` (serving inside one
directory), ``charts``, ``quota``, ``app`` (routes).
"""

from crawler.web.app import create_app
from crawler.web.config import WebConfig, WebConfigError

__all__ = ["WebConfig", "WebConfigError", "create_app"]
