"""The pages' own JavaScript in a real headless Chromium: signed calls, infinite scroll."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from playwright.async_api import BrowserContext, Page, Response, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from sandbox.site import SiteServer

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


async def scroll_until(page: Page, target: int, attempts: int = 12) -> None:
    """Scroll like a user until ``target`` cards are shown. A wheel event can be lost
    while the page is busy, so scroll again when nothing new arrived."""
    for _ in range(attempts):
        count = await page.locator("#feeds .note-item").count()
        if count >= target:
            return
        await page.mouse.wheel(0, 20000)
        with contextlib.suppress(PlaywrightTimeout):
            await page.wait_for_function(
                "n => document.querySelectorAll('#feeds .note-item').length > n",
                arg=count,
                timeout=5000,
            )


@pytest.fixture
async def browser_context(sandbox_site: SiteServer) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await context.add_cookies(
                [
                    {"name": n, "value": "sandbox", "url": sandbox_site.url}
                    for n in ("a1", "web_session")
                ]
            )
            yield context
        finally:
            await browser.close()


async def test_search_page_signs_its_calls_and_scrolls(
    sandbox_site: SiteServer, browser_context
) -> None:
    calls: list[Response] = []
    page = await browser_context.new_page()
    page.on(
        "response", lambda r: calls.append(r) if "/api/sns/web/v1/search/notes" in r.url else None
    )
    await page.goto(f"{sandbox_site.url}/search_result?keyword={quote('大模型')}")
    await page.wait_for_function(
        "document.querySelectorAll('#feeds .note-item').length >= 20", timeout=20000
    )
    expected = sandbox_site.dataset.search("大模型")
    assert len(expected) > 20  # more than one page
    await scroll_until(page, len(expected))
    assert await page.locator("#feeds .note-item").count() == len(expected), (
        [(c.status, c.url) for c in calls],
        sandbox_site.stats(),
    )
    assert len(calls) >= 2
    for response in calls:
        assert response.status == 200
        headers = response.request.headers
        assert (
            headers["x-s"].startswith("XYW_") and headers["x-t"].isdigit() and headers["x-s-common"]
        )
        assert (await response.json())["code"] == 0
    hrefs = await page.eval_on_selector_all(
        "#feeds .note-item", "els => els.map(e => e.getAttribute('href'))"
    )
    ids = [h.split("/explore/")[1].split("?")[0] for h in hrefs]
    assert ids == expected
    assert all("xsec_token=AB" in h and "xsec_source=pc_search" in h for h in hrefs)


async def test_profile_page_loads_more_notes_on_scroll(
    sandbox_site: SiteServer, browser_context
) -> None:
    ds = sandbox_site.dataset
    user_id = max(ds.users(), key=lambda u: len(ds.user_notes(u)))
    total = len(ds.user_notes(user_id))
    calls: list[Response] = []
    page = await browser_context.new_page()
    page.on(
        "response", lambda r: calls.append(r) if "/api/sns/web/v1/user_posted" in r.url else None
    )
    await page.goto(f"{sandbox_site.url}/user/profile/{user_id}")
    assert await page.locator("#feeds .note-item").count() == 30
    await page.mouse.wheel(0, 20000)
    await page.wait_for_function(
        f"document.querySelectorAll('#feeds .note-item').length === {total}", timeout=20000
    )
    assert calls and all(c.status == 200 for c in calls)
