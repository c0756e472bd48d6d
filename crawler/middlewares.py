"""Anti-bot reactions (the table in docs/architecture.md and the domain notes).

- captcha (HTTP 461/471): stop sending for a cool-down (the engine is paused, and the
  comment pages with it: crawler.core.antibot_pause), then retry the request a bounded
  number of times; every captcha is counted.
- cookie expired (-100), IP blocked (300012), account flagged (300011): the crawl
  stops with that reason; the `crawl` command turns it into an exit status.
- anything else (406 rejected signature, 300017 token, deleted notes) is left to the
  callback, which records it on the note or the listing.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.config import CrawlConfig
from crawler.core.antibot_pause import AntiBotPause
from crawler.core.run_context import RunContext
from crawler.parsing.signals import SiteSignal, classify_response

logger = logging.getLogger(__name__)

FATAL_SIGNALS = {
    "cookie_expired": "cookie expired, refresh XHS_COOKIES",
    "ip_blocked": "IP blocked by the site (code 300012); stop and wait before crawling again",
    "account_flagged": "account flagged by the site (code 300011); use another account",
}


Origin = tuple[str, str, int]  # (scheme, host, port)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL, the port made explicit; else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed port
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]


class SessionCookiesMiddleware:
    """Adds the XHS_COOKIES login cookies to each request at download time only.

    Only requests to the XHS_BASE_URL *origin* get them: same scheme, host and port
    (another port of the same host is another service), and never a request with
    ``dont_merge_cookies``, which asks for no cookies at all. They are merged into the
    header Scrapy's cookie jar built (site-set cookies win for the same name) and
    removed from the request object again on the way back, so retries and redirects
    that go through the scheduler, a JOBDIR queue or Redis never carry them.
    """

    def __init__(self, cookies: dict[str, str], site_origin: Origin | None) -> None:
        self.cookies = cookies
        self.site_origin = site_origin

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SessionCookiesMiddleware:
        config = CrawlConfig.from_settings(crawler.settings)
        return cls(config.cookies, origin_of(config.base_url))

    def process_request(self, request: Request) -> None:
        """Only requests to the site itself get the session: never image/CDN hosts."""
        if not self.cookies or request.meta.get("playwright"):
            return
        if request.meta.get("dont_merge_cookies"):
            return
        if self.site_origin is None or origin_of(request.url) != self.site_origin:
            return
        present = request.headers.get("Cookie", b"").decode("latin-1")
        names = {part.split("=", 1)[0].strip() for part in present.split(";") if "=" in part}
        extra = "; ".join(f"{k}={v}" for k, v in self.cookies.items() if k not in names)
        if extra:
            request.headers["Cookie"] = f"{present}; {extra}" if present else extra

    def process_response(self, request: Request, response: Response) -> Response:
        request.headers.pop("Cookie", None)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        request.headers.pop("Cookie", None)


class AntiBotMiddleware:
    def __init__(self, crawler: Crawler, config: CrawlConfig) -> None:
        self.crawler = crawler
        self.config = config

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AntiBotMiddleware:
        return cls(crawler, CrawlConfig.from_settings(crawler.settings))

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("playwright"):
            return response  # browser listings react in the spider, where the page is
        signal = classify_response(response.status, response.headers, response.body)
        if signal is None:
            return response
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(f"antibot/{signal.kind}")
        if signal.kind == "captcha":
            return self._on_captcha(request, response, signal)
        if signal.kind in FATAL_SIGNALS:
            stop_crawl(self.crawler, signal.kind)
            raise IgnoreRequest(f"{signal.kind}: {request.url}")
        return response

    def _on_captcha(
        self, request: Request, response: Response, signal: SiteSignal
    ) -> Request | Response:
        self.cool_down()
        retries = request.meta.get("antibot_retries", 0)
        if retries >= self.config.antibot_max_retries:
            self.crawler.stats.inc_value("antibot/captcha_gave_up")  # type: ignore[union-attr]
            logger.warning(
                "Captcha persists after %d retries, giving up on %s", retries, request.url
            )
            return response
        retry = request.replace(dont_filter=True)
        retry.meta["antibot_retries"] = retries + 1
        retry.priority = request.priority - 1
        return retry

    def cool_down(self) -> None:
        """Pause the crawl for ANTIBOT_COOLDOWN seconds (a new captcha extends it): the
        engine's requests and the browser's comment actions, one pause for both."""
        AntiBotPause.of(self.crawler).hold("http")


def stop_crawl(crawler: Crawler, kind: str) -> None:
    """Close the crawl once, with `kind` (a FATAL_SIGNALS key) as the finish reason."""
    context = RunContext.of(crawler)
    if context.stop_reason:
        return
    context.stop_reason = kind
    logger.error("Stopping the crawl: %s", FATAL_SIGNALS.get(kind, kind))
    assert crawler.engine is not None
    context.stop_task = asyncio.ensure_future(crawler.engine.close_spider_async(reason=kind))
