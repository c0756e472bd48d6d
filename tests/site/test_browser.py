"""The pages' own JavaScript in a real headless Chromium: signed calls, infinite scroll."""

from __future__ import annotations

import contextlib
import re
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


async def test_note_page_loads_comments_more_on_scroll_and_replies_on_click(
    sandbox_site: SiteServer, browser_context
) -> None:
    ds = sandbox_site.dataset
    live = [ds.note(i) for i in range(len(ds)) if not ds.is_deleted(i)]
    note = max(live, key=lambda n: n.interact_exact["comments"])
    truth = ds.comments(note.note_id)
    calls: list[Response] = []
    page = await browser_context.new_page()
    page.on("response", lambda r: calls.append(r) if "/api/sns/web/v2/comment/" in r.url else None)
    await page.goto(sandbox_site.url + f"/explore/{note.note_id}?xsec_token={note.xsec_token}")
    roots = page.locator("#comments .parent-comment")
    await page.wait_for_function(
        "document.querySelectorAll('#comments .parent-comment').length === 10", timeout=20000
    )
    # scroll the comment list (not the window) to its end, as a reader does
    await page.locator("#noteScroller").hover()
    for _ in range(6):
        if await roots.count() >= 30:
            break
        await page.mouse.wheel(0, 20000)
        with contextlib.suppress(PlaywrightTimeout):
            await page.wait_for_function(
                "n => document.querySelectorAll('#comments .parent-comment').length > n",
                arg=await roots.count(),
                timeout=5000,
            )
    count = await roots.count()
    assert count >= 20
    ids = await page.eval_on_selector_all(
        "#comments .parent-comment > .comment-item", "els => els.map(e => e.dataset.commentId)"
    )
    assert ids == [c.comment_id for c in truth[:count]]
    # expand the replies of the first loaded root that has more, found by its text
    root = max(truth[:count], key=lambda c: len(c.replies))
    assert len(root.replies) > 1
    shown = min(len(root.replies), 11)
    wrap = page.locator(f"#comment-{root.comment_id}").locator("xpath=..")
    control = wrap.get_by_text(re.compile(r"展开 \d+ 条回复"))
    assert await control.inner_text() == f"展开 {root.reply_count - 1} 条回复"
    await control.click()
    replies = wrap.locator(".comment-item-sub")
    await page.wait_for_function(
        "id => document.getElementById('comment-' + id).parentElement"
        ".querySelectorAll('.comment-item-sub').length === " + str(shown),
        arg=root.comment_id,
        timeout=10000,
    )
    got = await replies.evaluate_all("els => els.map(e => e.dataset.commentId)")
    assert got == [r.comment_id for r in root.replies[:shown]]
    assert await wrap.get_by_text("展开更多回复").count() == (len(root.replies) > 11)
    assert calls and all(c.status == 200 for c in calls)
    for response in calls:
        assert response.request.headers["x-s"].startswith("XYW_")
