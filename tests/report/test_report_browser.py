"""The run report in real Chromium with the network blocked, at 1280 and 800 px: every
chart draws inside its cell with whole-number count ticks, the notes table lists the
run's notes with working links, and a past run's report written again later (after
another run) matches the original. Size under 300 KB plus the one shared plotly.js."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from sandbox.harness import ROOT, sandbox_env

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
NOTES_TABLE = re.compile(r'<table class="notes".*?</table>', re.S)

MEASURE = """() => [...document.querySelectorAll('.chart')].map(cell => {
  const svg = cell.querySelector('.js-plotly-plot .main-svg');
  const ticks = [...cell.querySelectorAll('.ytick text, .xtick text')].map(t => t.textContent);
  return {cell: cell.clientWidth, svg: svg ? svg.getBoundingClientRect().width : 0,
          title: (cell.querySelector('.gtitle') || {}).textContent || '', ticks};
})"""


def _note_ids(site, indices) -> str:
    notes = [site.dataset.note(i) for i in indices]
    return ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)


def test_report_in_chromium_offline_and_regenerated(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name, tmp_path: Path
) -> None:
    site = make_site()
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, ENRICH_BACKEND="off")
    first = scrapy_crawl("xhs", {"note_ids": _note_ids(site, range(6)) + ",javascript:x"}, env)
    assert first.returncode == 0, first.log[-3000:]
    second = scrapy_crawl("xhs", {"note_ids": _note_ids(site, range(6, 10))}, env)
    assert second.returncode == 0, second.log[-3000:]
    run_id = first.stats["run_id"]
    report = tmp_path / "reports" / f"run-{run_id}.html"
    assert report.exists(), first.log[-3000:]
    assert report.stat().st_size < 300_000
    assert (tmp_path / "reports" / "plotly.min.js").exists()
    assert len(list((tmp_path / "reports").glob("plotly*"))) == 1

    # the past run's report, written again now that another run came after it
    again = tmp_path / "again"
    proc = subprocess.run(
        [sys.executable, "-m", "crawler.report", run_id, "--out", str(again)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **env, "IMAGES_STORE": str(tmp_path / "images")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    original = NOTES_TABLE.search(report.read_text(encoding="utf-8")).group(0)
    regenerated = NOTES_TABLE.search((again / report.name).read_text(encoding="utf-8")).group(0)
    assert regenerated.replace("../images/", "") == original.replace("../images/", "")
    assert (again / "plotly.min.js").exists()

    expected = {item["note_id"]: item["url"] for item in first.items}
    assert len(expected) == 6
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=CHROMIUM_ARGS)  # fmt: skip
        blocked: list[str] = []
        for width in (1920, 1280, 800):
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.route(
                "http*://**", lambda route: (blocked.append(route.request.url), route.abort())
            )
            page.goto(report.as_uri())
            page.wait_for_function("document.querySelectorAll('.chart .main-svg').length >= 7",
                                   timeout=20000)  # fmt: skip
            page.wait_for_timeout(300)  # the responsive relayout after the first draw
            charts = page.evaluate(MEASURE)
            assert len(charts) == 7
            for chart in charts:
                assert 0.9 * chart["cell"] <= chart["svg"] <= chart["cell"] + 1, (width, chart)
            counts = [
                c
                for c in charts
                if c["title"] in ("Enrichment status", "Notes per day (published)")
            ]
            for chart in counts:  # a count axis shows whole numbers only
                numbers = [t for t in chart["ticks"] if re.fullmatch(r"[\d.,]+", t)]
                assert numbers and all(re.fullmatch(r"\d[\d,]*", t) for t in numbers), chart
            if width == 800:  # one column: each chart takes the page's width
                assert all(c["cell"] > 700 for c in charts)
            page.locator("#notes").scroll_into_view_if_needed()  # thumbnails load lazily
            page.wait_for_function(
                "[...document.querySelectorAll('#notes img')].every(i => i.complete)", timeout=10000
            )
            rows = page.evaluate("""() => [...document.querySelectorAll('#notes tbody tr')].map(
                tr => ({id: tr.dataset.noteId, href: tr.querySelector('a').href,
                        img: tr.querySelector('img') && tr.querySelector('img').naturalWidth}))""")
            assert {row["id"]: row["href"] for row in rows} == expected
            assert all(row["img"] for row in rows), rows  # thumbnails load from disk
            failures = page.inner_text("#failures")
            assert "javascript:x" in failures and "bad_argument" in failures
            page.close()
        # a link works: it opens the note on the sandbox (the network is open for this page)
        page = browser.new_page()
        page.goto(report.as_uri())
        page.click("#notes tbody tr:first-child a")
        page.wait_for_load_state("domcontentloaded")
        assert "/explore/" in page.url and page.title()
        browser.close()
    assert blocked == []  # nothing tried to leave the machine
