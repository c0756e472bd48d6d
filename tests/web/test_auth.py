"""crawler/web/auth.py: ``WEB_TOKEN`` in front of every route. Which token a request
presents (a real Starlette request), and the app bound elsewhere refusing what does not
carry it (uvicorn over TCP, real Chromium for the cookie)."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser
from starlette.requests import Request

from crawler.web import WebConfigError
from crawler.web.auth import COOKIE, presented_token
from tests.web.conftest import Served, config_for, get


def request_with(headers: dict[str, str], query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/notes", "headers": raw,
                    "query_string": query.encode()})  # fmt: skip


def test_the_token_a_request_presents() -> None:
    assert presented_token(request_with({"Authorization": "Bearer  abc "})) == ("abc", False)
    assert presented_token(request_with({"Authorization": "bearer abc"})) == ("abc", False)
    assert presented_token(request_with({"X-Web-Token": "xyz"})) == ("xyz", False)
    assert presented_token(request_with({"Cookie": f"{COOKIE}=kk"})) == ("kk", False)
    assert presented_token(request_with({}, "token=qq&page=2")) == ("qq", True)
    assert presented_token(request_with({})) == ("", False)
    assert presented_token(request_with({"Authorization": "Basic dXNlcg=="})) == ("", False)
    # A header wins over the query string: the answer sets no cookie then.
    assert presented_token(request_with({"X-Web-Token": "h"}, "token=q")) == ("h", False)


def test_web_token_required_when_bound_elsewhere(mongo_server, store, browser: Browser) -> None:
    with pytest.raises(WebConfigError, match="WEB_TOKEN"):
        config_for(mongo_server, store, host="0.0.0.0").check()
    with pytest.raises(WebConfigError, match="WEB_TOKEN"):
        config_for(mongo_server, store, host="192.168.1.20").check()
    config_for(mongo_server, store, host="::1").check()  # loopback needs none
    token = "s3cret-" + uuid.uuid4().hex
    # The app configured as bound elsewhere (served on loopback here: the check is the app's).
    with Served(config_for(mongo_server, store, host="0.0.0.0", token=token)) as served:
        assert token not in repr(served.config)
        assert get(f"{served.url}/notes")[0] == 401
        assert get(f"{served.url}/images/{store['paths'][0]}")[0] == 401
        assert get(f"{served.url}/notes", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(f"{served.url}/notes", {"Authorization": f"Bearer {token}"})[0] == 200
        assert get(f"{served.url}/notes", {"X-Web-Token": token})[0] == 200
        page = browser.new_page()
        assert page.goto(f"{served.url}/notes").status == 401
        assert page.goto(f"{served.url}/notes?token={token}").status == 200  # sets the cookie
        with page.expect_navigation():
            page.get_by_role("link", name="Creators").click()
        assert page.url.endswith("/creators") and "Creators" in page.locator("h1").inner_text()
        page.close()
