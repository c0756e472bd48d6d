"""The analyst web app in real Chromium: list filters and search, a note's images with
their OCR text, the history chart, no request leaving 127.0.0.1, screenshots."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Route

from tests.export.factory import note_doc, note_id
from tests.web.conftest import IMAGE_NOTE, NOTES


def _count(page: Page) -> int:
    return int(page.get_by_test_id("count").inner_text().split()[0].replace(",", ""))


def _rows(page: Page) -> list[str]:
    return page.locator("table.notes tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.noteId)"
    )


def test_list_search_filters_sort_and_paging(browser: Browser, app_url: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{app_url}/notes")
    assert _count(page) == NOTES and len(_rows(page)) == 20  # page size
    page.get_by_role("link", name="next →").click()
    assert "page 2 of 3" in page.locator(".pager span").inner_text()
    assert len(_rows(page)) == 20

    # Search reaches OCR text only present in the images' enrichment (note 13 is done).
    page.goto(f"{app_url}/notes")
    page.get_by_label("search").fill("spf13")
    page.get_by_role("button", name="Apply").click()
    assert _rows(page) == [note_id(13)]
    # ...and the title and desc.
    page.get_by_label("search").fill("正文 42 ")
    page.get_by_role("button", name="Apply").click()
    assert _rows(page) == [note_id(42)]

    # Tag, status, backend and found_via together.
    page.goto(f"{app_url}/notes")
    page.get_by_label("tag").select_option("旅行")
    page.get_by_label("enrichment status").select_option("done")
    page.get_by_label("backend").select_option("gemini")
    page.get_by_label("found via").select_option("note_id")
    page.get_by_role("button", name="Apply").click()
    expected = {
        note_id(i)
        for i in range(NOTES)
        if "旅行" in note_doc(i)["tags"]
        and note_doc(i)["enrichment"]["status"] == "done"
        and note_doc(i)["enrichment"]["backend"] == "gemini"
        and note_doc(i)["found_via"] == "note_id"
    }
    assert expected and set(_rows(page)) == expected and _count(page) == len(expected)

    # Author (by nickname) and a published date range, sorted by likes.
    page.goto(f"{app_url}/notes?author=作者7&from=2026-11-01&to=2026-11-03&sort=likes")
    want = [
        d["_id"]
        for d in sorted((note_doc(i) for i in range(NOTES)), key=lambda d: -d["interact"]["liked"])
        if d["user"]["nickname"] == "作者7" and d["published_at"].day <= 3
    ]
    assert _rows(page) == want == [note_id(47), note_id(7)]  # by likes; 87 is too late

    # A bad value is a clear message, not a guess.
    page.goto(f"{app_url}/notes?from=yesterday")
    assert "from='yesterday' is not a date" in page.get_by_role("alert").inner_text()
    page.close()


def test_note_page_images_ocr_chart_and_screenshots(
    browser: Browser, app_url: str, screenshots: Path
) -> None:
    for width in (1280, 800):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(f"{app_url}/notes/{note_id(IMAGE_NOTE)}")
        figures = page.locator("figure.image")
        assert figures.count() == 3
        for k in range(3):
            fig = figures.nth(k)
            img = fig.locator("img")
            img.scroll_into_view_if_needed()
            page.wait_for_function(
                "img => img.complete && img.naturalWidth === 480", arg=img.element_handle()
            )
            assert (
                fig.locator("pre.ocr").inner_text() == f"图中文字 {IMAGE_NOTE}-{k} SPF{IMAGE_NOTE}"
            )
            assert fig.locator(".caption").inner_text() == f"图 {k}"
        assert f"摘要 {IMAGE_NOTE}" in page.get_by_test_id("enrichment").inner_text()
        chart = page.get_by_test_id("history-chart")
        page.wait_for_selector("#history-chart[data-drawn='1'] .main-svg")
        assert chart.locator(".scatterlayer .trace").count() == 3  # liked, collected, comments
        assert page.locator(".comments .thread > li").count() == 1
        assert page.locator(".comments .replies > li").count() == 2
        page.screenshot(path=str(screenshots / f"note-{width}.png"), full_page=True)
        page.goto(f"{app_url}/notes")
        page.screenshot(path=str(screenshots / f"notes-{width}.png"), full_page=False)
        page.close()


def test_no_request_leaves_localhost(browser: Browser, app_url: str, mongo_server, store) -> None:
    context = browser.new_context()
    seen: list[str] = []

    def guard(route: Route) -> None:
        seen.append(route.request.url)
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    for path in ("/notes", f"/notes/{note_id(IMAGE_NOTE)}", f"/notes/{note_id(8)}", "/creators",
                 "/creators/u001", "/runs", "/quota", "/notes?sort=likes&page=2"):  # fmt: skip
        page.goto(app_url + path)
        page.wait_for_load_state("networkidle")
    context.close()
    assert len(seen) > 10
    assert {urlsplit(u).hostname for u in seen} == {"127.0.0.1"}, [
        u for u in seen if urlsplit(u).hostname != "127.0.0.1"
    ]
