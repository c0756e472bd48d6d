"""What the app refuses and what it shows when there is nothing: path traversal on the
image and report routes, WEB_TOKEN when bound elsewhere, read-only routes, empty states,
quota rows with key fingerprints, runs with their reports, creators and growth."""

from __future__ import annotations

import asyncio
import http.client
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser
from pymongo import AsyncMongoClient

from crawler.web.quota import pacific_day
from pipelines.mongo import MongoQuotaStateStore
from tests.web.conftest import Served, config_for, get

ROOT = Path(__file__).resolve().parents[2]


def raw_get(base: str, path: str, method: str = "GET") -> int:
    """A request line sent exactly as written (no client-side ``..`` normalisation)."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_images_served_only_from_inside_images_store(app_url: str, store) -> None:
    status, headers, body = get(f"{app_url}/images/{store['paths'][0]}")
    assert status == 200 and body[:2] == b"\xff\xd8" and headers["content-type"] == "image/jpeg"
    outside = store["images"].parent / "secret.txt"
    (store["images"] / "full" / "link.txt").symlink_to(outside)
    for path in (
        "/images/../secret.txt",
        "/images/full/../../secret.txt",
        "/images/..%2Fsecret.txt",
        "/images/%2E%2E/%2E%2E/secret.txt",
        "/images/full/link.txt",  # a symlink pointing out of the store
        f"/images/{outside}",  # absolute
        "/images//etc/passwd",
        "/images/%00",
        "/images/full",  # a directory
        "/reports/../images0/" + store["paths"][0],
    ):
        assert raw_get(app_url, path) == 404, path
    assert b"outside the store" not in get(f"{app_url}/images/..%2Fsecret.txt")[2]


def test_read_only_and_security_headers(app_url: str) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert raw_get(app_url, "/notes", method) == 405
    status, headers, _ = get(f"{app_url}/notes")
    assert status == 200 and "default-src 'self'" in headers["content-security-policy"]


def test_cli_refuses_public_bind_without_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "WEB_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "crawler.web", "--host", "0.0.0.0", "--port", "1"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "WEB_TOKEN" in done.stderr


@pytest.fixture(scope="module")
def empty_url(mongo_server, store, tmp_path_factory):
    config = config_for(mongo_server, store)
    empty = replace(
        config,
        mongo=replace(config.mongo, database=f"e_{uuid.uuid4().hex[:8]}"),
        report_dir=tmp_path_factory.mktemp("noreports"),
    )
    with Served(empty) as served:
        yield served.url


@pytest.mark.parametrize(
    "path, text",
    [
        ("/notes", "Run a crawl"),
        ("/creators", "No creator profiles stored yet"),
        ("/runs", "No runs recorded yet"),
        ("/quota", "No quota state saved yet"),
    ],
)
def test_empty_store_shows_empty_states(empty_url: str, path: str, text: str) -> None:
    status, _, body = get(empty_url + path)
    assert status == 200 and text in body.decode()


def test_missing_note_is_404(app_url: str) -> None:
    assert get(f"{app_url}/notes/{'f' * 24}")[0] == 404
    assert get(f"{app_url}/creators/nobody")[0] == 404


def test_quota_page_rows_and_fingerprints(app_url: str, mongo_server, store) -> None:
    now = datetime.now(UTC)
    today = pacific_day(now).isoformat()
    state = {
        "version": 1,
        "saved_at": now.isoformat(),
        "exhausted": [{"project": "projA", "model": "gemini-2.5-flash-lite",
                       "until": (now + timedelta(hours=5)).isoformat(), "reason": "per_day"}],
        "learned_limits": [{"project": "projA", "model": "gemini-2.5-flash-lite",
                            "rpm": None, "tpm": None, "rpd": 20}],
        "day_counts": [{"project": "projA", "model": "gemini-2.5-flash-lite", "day": today, "count": 20},
                       {"project": "projA", "model": "gemini-2.5-flash-lite", "day": "2020-01-01", "count": 7},
                       {"project": "projB", "model": "gemini-2.5-flash", "day": today, "count": 3}],
        "dropped_models": [],
        "dropped_for_project": [],
        "disabled_keys": [{"key_fp": "k:9f8e7d6c", "project": "projB", "reason": "bad_key", "at": "x"}],
    }  # fmt: skip

    async def save() -> None:
        client = AsyncMongoClient(mongo_server.uri, tz_aware=True)
        await MongoQuotaStateStore(client[store["db"]]).save(state)
        await client.close()

    with ThreadPoolExecutor(1) as pool:  # this thread runs sync Playwright's loop
        pool.submit(asyncio.run, save()).result()
    status, _, body = get(f"{app_url}/quota")
    html = body.decode()
    assert status == 200 and "projA" in html and "gemini-2.5-flash-lite" in html
    row_a = html.split("<td>projA</td>")[1].split("</tr>")[0]
    assert '<td class="n">20</td>' in row_a and "per_day" in row_a  # today's count only
    assert "k:9f8e7d6c" in html


def test_runs_link_to_their_reports(app_url: str, store) -> None:
    db = store["client"][store["db"]]
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    db.crawl_runs.insert_many([
        {"_id": "20261102T000000Z-abcdef", "spider": "xhs", "status": "finished", "started_at": t0,
         "finished_at": t0 + timedelta(minutes=5), "finish_reason": "finished", "exit_status": 0,
         "notes": {"scraped": 60, "new": 60}, "images": {"ok": 3}, "enrichment": {"done": 30}},
        {"_id": "20261103T000000Z-000000", "spider": "enrich", "status": "failed",
         "started_at": t0 + timedelta(days=1), "finish_reason": "shutdown", "exit_status": 1},
    ])  # fmt: skip
    (store["reports"] / "run-20261102T000000Z-abcdef.html").write_text("<h1>report abc</h1>")
    status, _, body = get(f"{app_url}/runs")
    html = body.decode()
    assert status == 200 and html.count('href="/reports/') == 1
    assert 'href="/reports/run-20261102T000000Z-abcdef.html"' in html
    status, _headers, body = get(f"{app_url}/reports/run-20261102T000000Z-abcdef.html")
    assert status == 200 and b"report abc" in body
    status, _headers, body = get(f"{app_url}/reports/plotly.min.js")  # the reports' script
    assert status == 200 and body.startswith(b"/**") and len(body) > 1_000_000
    status, _headers, body = get(f"{app_url}/reports/report.js")
    assert status == 200 and b"Plotly.newPlot" in body


def test_creators_and_growth_chart(browser: Browser, app_url: str, screenshots: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{app_url}/creators")
    names = page.locator("table tbody tr td:first-child").all_inner_texts()
    assert names[0] == "作者4"  # most fans first
    page.get_by_role("link", name="作者1", exact=True).click()
    page.wait_for_selector("#growth-chart[data-drawn='1'] .main-svg")
    assert page.locator("ul.plain li").count() == 2  # notes 1 and 41 of this author
    page.screenshot(path=str(screenshots / "creator-1280.png"), full_page=True)
    page.close()


def test_sparse_and_hostile_documents_render_escaped(app_url: str, store) -> None:
    db = store["client"][store["db"]]
    db.notes.insert_many([
        {"_id": "sparse0000", "title": None},  # almost nothing stored
        {"_id": "hostile000", "title": "<script>alert(1)</script>", "desc": "<img src=x onerror=1>",
         "user": {"user_id": "<b>u</b>"}, "tags": ["<i>t</i>"], "interact": {"liked": "12345678901234567890123"},
         "images": [{"url": "https://evil.example/x.jpg", "path": "../../secret.txt", "status": "ok"},
                    {"url": "https://sns-webpic-qc.xhscdn.com/y", "status": "failed", "error": "http_404"}],
         "enrichment": {"status": "failed", "backend": "gemini", "reason": "content_blocked",
                        "result": {"summary": "<b>s</b>", "images": "not a list"}}},
    ])  # fmt: skip
    status, _, body = get(f"{app_url}/notes/sparse0000")
    assert status == 200 and "(untitled)" in body.decode()
    status, _, body = get(f"{app_url}/notes/hostile000")
    html = body.decode()
    assert status == 200
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "evil.example" not in html
    assert "not downloaded: http_404" in html and "content_blocked" in html
    assert raw_get(app_url, "/images/../../secret.txt") == 404
    status, _, body = get(f"{app_url}/notes?q=%3Cscript%3E")
    assert status == 200 and "hostile000" in body.decode()
    assert get(f"{app_url}/notes/%3Cscript%3E")[0] == 404
