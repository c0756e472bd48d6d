"""End to end operations: incremental re-crawl, overlap guard, resume, distributed mode,
and the HTML run report, each against real servers (sandbox, Mongo wire, Redis,
Chromium)."""

from __future__ import annotations

import json
import signal
import time

import pytest
from pymongo import MongoClient

from sandbox.harness import run_crawl, sandbox_env, start_crawl

pytestmark = pytest.mark.slow


def _note_ids(site, count: int, start: int = 0) -> str:
    notes = [site.dataset.note(i) for i in range(start, start + count)]
    return ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)


def _generate_calls(emulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "generateContent")


def _live_count(site, count: int, start: int = 0) -> int:
    deleted = set(site.dataset.deleted_ids(range(start, start + count)))
    return count - len(deleted)


def test_second_run_is_incremental(
    make_site, make_gemini_emulator, scrapy_crawl, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    site = make_site()
    emulator = make_gemini_emulator(None)
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name,
                      GEMINI_BASE_URL=emulator.base_url, GEMINI_API_KEYS="p1:test-key-1")  # fmt: skip
    ids = _note_ids(site, 12)
    live = _live_count(site, 12)
    first = scrapy_crawl("xhs", {"note_ids": ids}, env)
    assert first.returncode == 0, first.log[-4000:]
    requests_after_first = _generate_calls(emulator)
    assert mongo_sync.notes.count_documents({}) == live
    assert mongo_sync.notes.count_documents({"enrichment.status": "done"}) == live
    assert 0 < requests_after_first <= live  # one request per note
    images_served = site.stats().get("cdn_ok", 0)

    second = scrapy_crawl("xhs", {"note_ids": ids}, env)
    assert second.returncode == 0, second.log[-4000:]
    assert _generate_calls(emulator) == requests_after_first, "re-crawl spent Gemini requests"
    assert site.stats().get("cdn_ok", 0) == images_served, "re-crawl downloaded images again"
    assert mongo_sync.notes.count_documents({}) == live
    assert mongo_sync.note_stats.count_documents({}) == 2 * live
    run = mongo_sync.crawl_runs.find_one({}, sort=[("started_at", -1)])
    assert run["notes"]["unchanged"] == live


def test_overlapping_runs_one_exits_with_overlap_status(
    make_site, mongo_uri, mongo_db_name, tmp_path
) -> None:
    site = make_site()
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, ENRICH_BACKEND="off")
    args = {"note_ids": _note_ids(site, 20)}
    settings = {"DOWNLOAD_DELAY": "0.25",
                "ITEM_PIPELINES": json.dumps({"pipelines.storage.MongoStoragePipeline": 400})}  # fmt: skip
    # The first run must outlive the second's start-up (seconds on a loaded machine).
    slow = {**settings, "DOWNLOAD_DELAY": "1.5"}
    with start_crawl("xhs", args, env, workdir=tmp_path, label="first", settings=slow) as first:
        client: MongoClient = MongoClient(mongo_uri)
        deadline = time.monotonic() + 60
        while not client[mongo_db_name].leases.count_documents({}) and time.monotonic() < deadline:
            time.sleep(0.1)
        second = run_crawl(
            "xhs", args, env, workdir=tmp_path, label="second", settings=settings, timeout=120
        )
        assert second.returncode == 3, second.log[-3000:]
        assert "Another run of 'xhs' with the same arguments is in progress" in second.stderr
        assert first.wait(timeout=240).returncode == 0
    assert client[mongo_db_name].leases.count_documents({}) == 0  # released at the end
    client.close()


def test_jobdir_resume_fetches_every_note_once(
    make_site, mongo_uri, mongo_db_name, tmp_path
) -> None:
    site = make_site()
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, ENRICH_BACKEND="off")
    args = {"note_ids": _note_ids(site, 40)}
    live = _live_count(site, 40)
    settings = {"JOBDIR": str(tmp_path / "job"), "DOWNLOAD_DELAY": "0.25",
                "CONCURRENT_REQUESTS": "1", "ITEM_PIPELINES": "{}"}  # fmt: skip
    with start_crawl("xhs", args, env, workdir=tmp_path, label="a", settings=settings) as first:
        deadline = time.monotonic() + 90
        while site.stats().get("note_ok", 0) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        first.proc.send_signal(signal.SIGINT)  # what Ctrl-C or a scheduler's stop sends
        interrupted = first.wait(timeout=120)
    fetched_first = site.stats().get("note_ok", 0)
    assert 0 < fetched_first < live, "the first run was not interrupted: test proves nothing"
    second = run_crawl(
        "xhs", args, env, workdir=tmp_path, label="b", settings=settings, timeout=240
    )
    assert second.returncode == 0, second.stderr[-3000:]
    ids_seen = [item["note_id"] for item in interrupted.items + second.items]
    assert len(ids_seen) == len(set(ids_seen)) == live
    assert site.stats().get("note_ok", 0) == live  # no note page fetched twice


def test_two_redis_workers_share_one_queue(
    make_site, redis_url, mongo_uri, mongo_db_name, mongo_sync, tmp_path
) -> None:
    site = make_site(notes=600)
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name,
                      ENRICH_BACKEND="off", REDIS_URL=redis_url, REDIS_RUN="t2w")  # fmt: skip
    ids = _note_ids(site, 500)
    live = _live_count(site, 500)
    # A small delay makes the crawl last longer than an idle worker's 5 s poll of the
    # shared queue (Scrapy's heartbeat), as any real crawl does.
    common = {"DOWNLOAD_DELAY": "0.05", "DISTRIBUTED_IDLE_TIMEOUT": "5",
              "ITEM_PIPELINES": json.dumps({"pipelines.storage.MongoStoragePipeline": 400}),
              "CONCURRENT_REQUESTS": "4"}  # fmt: skip
    with (
        start_crawl("xhs", {"note_ids": ids}, env, workdir=tmp_path, label="w0",
                    settings={**common, "SCHEDULER_FLUSH_ON_START": "True"}) as w0,
        start_crawl("xhs", {}, env, workdir=tmp_path, label="w1", settings=common) as w1,
    ):  # fmt: skip
        results = [w0.wait(timeout=300), w1.wait(timeout=300)]
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    counts = [len(result.items) for result in results]
    assert sum(counts) == live, counts
    assert min(counts) >= 0.3 * live, f"work not split: {counts}"
    assert mongo_sync.notes.count_documents({}) == live


def test_run_report_opens_in_chromium_with_charts(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name, tmp_path
) -> None:
    from playwright.sync_api import sync_playwright

    site = make_site()
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, ENRICH_BACKEND="off")
    result = scrapy_crawl("xhs", {"note_ids": _note_ids(site, 8)}, env)
    assert result.returncode == 0, result.log[-3000:]
    reports = list((tmp_path / "reports").glob("run-*.html"))
    assert len(reports) == 1, result.log[-3000:]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 2000})
        page.route("http*://**", lambda route: route.abort())  # prove it opens offline
        page.goto(reports[0].as_uri())
        page.wait_for_selector(".main-svg", timeout=15000)
        drawn = page.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length")
        bars = page.evaluate("document.querySelectorAll('.js-plotly-plot g.point').length")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert drawn >= 7, "charts did not draw"
    assert bars > 0, "charts drew no bars"
