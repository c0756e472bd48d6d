"""crawler/middlewares.py: the session cookies' reach and the anti-bot reactions."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler

from crawler.core.run_context import RunContext
from crawler.middlewares import (
    AntiBotMiddleware,
    SessionCookiesMiddleware,
    origin_of,
    stop_crawl,
)
from crawler.settings import knob_defaults

SITE = "https://www.xiaohongshu.com"
NOTE = f"{SITE}/explore/685e9b3d00000000240089a5"


def crawler_with(**settings: object) -> Crawler:
    """A crawler with the project's knobs and a real (unstarted) engine."""
    crawler = get_crawler(Spider, {**knob_defaults, **settings})
    crawler._apply_settings()
    crawler.engine = crawler._create_engine()
    return crawler


def session(base: str = SITE) -> SessionCookiesMiddleware:
    return SessionCookiesMiddleware.from_crawler(
        crawler_with(XHS_BASE_URL=base, XHS_COOKIES="a1=s3cr3t; web_session=w")
    )


def cookie_of(mw: SessionCookiesMiddleware, request: Request) -> str | None:
    mw.process_request(request)
    value = request.headers.get("Cookie")
    return value.decode("latin-1") if value is not None else None


# --- origins -----------------------------------------------------------------------------


def test_origin_makes_the_default_port_explicit() -> None:
    assert origin_of("https://www.xiaohongshu.com/x") == ("https", "www.xiaohongshu.com", 443)
    assert origin_of("http://127.0.0.1:8080/") == ("http", "127.0.0.1", 8080)
    assert origin_of("HTTPS://WWW.Xiaohongshu.com:443") == ("https", "www.xiaohongshu.com", 443)
    assert origin_of("ftp://host/x") is None
    assert origin_of("http://host:99999/") is None
    assert origin_of("not a url") is None


# --- SessionCookiesMiddleware (issue 18 defect 7) -----------------------------------------


def test_the_site_origin_gets_the_session() -> None:
    mw = session()
    assert cookie_of(mw, Request(NOTE)) == "a1=s3cr3t; web_session=w"
    assert cookie_of(mw, Request(NOTE.replace(SITE, f"{SITE}:443"))) == "a1=s3cr3t; web_session=w"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.xiaohongshu.com:8443/explore/685e9b3d00000000240089a5",  # another port
        "http://www.xiaohongshu.com/explore/685e9b3d00000000240089a5",  # another scheme
        "https://sns-img-bd.xhscdn.com/token",  # an image host
        "https://evil.example/www.xiaohongshu.com",
    ],
)
def test_other_origins_never_get_the_session(url: str) -> None:
    assert cookie_of(session(), Request(url)) is None


def test_another_port_of_a_local_site_host_gets_no_cookie() -> None:
    mw = session("http://127.0.0.1:8000")
    assert cookie_of(mw, Request("http://127.0.0.1:8000/explore/x")) is not None
    assert cookie_of(mw, Request("http://127.0.0.1:8001/explore/x")) is None
    assert cookie_of(mw, Request("http://127.0.0.1/explore/x")) is None


def test_dont_merge_cookies_means_no_session_either() -> None:
    request = Request(NOTE, meta={"dont_merge_cookies": True})
    assert cookie_of(session(), request) is None


def test_site_cookies_win_and_are_not_repeated() -> None:
    request = Request(NOTE, headers={"Cookie": "a1=from-site"})
    assert cookie_of(session(), request) == "a1=from-site; web_session=w"


def test_browser_requests_and_no_cookies_are_left_alone() -> None:
    assert cookie_of(session(), Request(NOTE, meta={"playwright": True})) is None
    mw = SessionCookiesMiddleware.from_crawler(crawler_with(XHS_BASE_URL=SITE))
    assert cookie_of(mw, Request(NOTE)) is None


def test_the_cookie_header_leaves_the_request_on_the_way_back() -> None:
    mw = session()
    request = Request(NOTE)
    mw.process_request(request)
    mw.process_response(request, HtmlResponse(NOTE, body=b"", request=request))
    assert "Cookie" not in request.headers
    mw.process_request(request)
    mw.process_exception(request, TimeoutError())
    assert "Cookie" not in request.headers


# --- AntiBotMiddleware --------------------------------------------------------------------


def answer(request: Request, status: int = 200, body: dict | None = None) -> TextResponse:
    payload = json.dumps(body or {"code": 0, "success": True}).encode()
    return TextResponse(request.url, status=status, body=payload, request=request)


async def test_a_captcha_pauses_the_engine_then_retries_a_bounded_number_of_times() -> None:
    crawler = crawler_with(XHS_BASE_URL=SITE, ANTIBOT_COOLDOWN=0.05, ANTIBOT_MAX_RETRIES=2)
    mw = AntiBotMiddleware.from_crawler(crawler)
    request = Request(NOTE, priority=5)
    retry = mw.process_response(request, answer(request, 461))
    assert isinstance(retry, Request) and retry.dont_filter
    assert retry.meta["antibot_retries"] == 1 and retry.priority == 4
    assert crawler.engine.paused
    await asyncio.sleep(0.15)
    assert not crawler.engine.paused  # the cool-down ended by itself
    second = mw.process_response(retry, answer(retry, 471))
    assert isinstance(second, Request) and second.meta["antibot_retries"] == 2
    gave_up = mw.process_response(second, answer(second, 461))
    assert isinstance(gave_up, TextResponse) and gave_up.status == 461
    assert crawler.stats.get_value("antibot/captcha") == 3
    assert crawler.stats.get_value("antibot/captcha_gave_up") == 1
    await asyncio.sleep(0.15)


async def test_a_fatal_signal_stops_the_run_once_through_the_run_context() -> None:
    crawler = crawler_with(XHS_BASE_URL=SITE)
    mw = AntiBotMiddleware.from_crawler(crawler)
    request = Request(f"{SITE}/api/sns/web/v1/search/notes")
    with pytest.raises(IgnoreRequest, match="ip_blocked"):
        mw.process_response(request, answer(request, 200, {"code": 300012, "msg": "ip"}))
    context = RunContext.of(crawler)
    assert context.stop_reason == "ip_blocked"
    first_task = context.stop_task
    stop_crawl(crawler, "cookie_expired")  # a later signal does not replace the first
    assert context.stop_reason == "ip_blocked" and context.stop_task is first_task
    assert not hasattr(crawler, "xhs_stop_reason")
    # The engine was never started here: closing it fails, which is not under test.
    with contextlib.suppress(RuntimeError):
        await first_task


def test_ordinary_answers_and_browser_pages_pass_through() -> None:
    crawler = crawler_with(XHS_BASE_URL=SITE)
    mw = AntiBotMiddleware.from_crawler(crawler)
    request = Request(NOTE)
    response = answer(request)
    assert mw.process_response(request, response) is response
    browser = Request(NOTE, meta={"playwright": True})
    blocked = answer(browser, 461)
    assert mw.process_response(browser, blocked) is blocked
    assert not crawler.engine.paused
