"""Web pages: response times of the analyst's web app on 20,000 notes (target: the first
page of the notes list under 300 ms, a search or filtered page under 1 s).

The store is the embedded default: a data directory of 20,000 notes (the stored shape
of docs/schema.md, ``tests/export/factory.py``) with the indexes storage creates
(pipelines/storage/schema.py), and ``python -m crawler.web`` started on it as an analyst
starts it (``MONGO_URI`` empty: the app serves the directory in its own process). Each
page is fetched once to warm it, then ``ROUNDS`` times over HTTP; the median and the
slowest are reported, the median is checked. ``first_load_s``: from the app's start to
its first notes page (the listing of every note is loaded once, see
crawler/web/listing.py).

``python -m bench.web_pages [--quick]`` (quick: 5,000 notes, 3 rounds).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from pymongo import MongoClient

from bench.common import ROOT, Check, finish, parse_args
from bench.export_memory import fill
from crawler.core.names import NOTES
from pipelines.storage.schema import NOTE_INDEXES
from sandbox.harness import MongoServer, free_port, stop_process, wait_for_port
from tests.export.factory import note_id

FIRST_PAGE_MS = 300
FILTERED_MS = 1000
# (figure name, path, target in ms): the list's common pages, then a note's own page.
PAGES: list[tuple[str, str, int | None]] = [
    ("first_page", "/notes", FIRST_PAGE_MS),
    ("page_3", "/notes?page=3", FIRST_PAGE_MS),
    ("sort_likes", "/notes?sort=likes", FIRST_PAGE_MS),
    ("sort_published", "/notes?sort=published", FIRST_PAGE_MS),
    ("search_ocr", "/notes?q=" + quote("SPF123"), FILTERED_MS),
    ("search_title", "/notes?q=" + quote("笔记 4567"), FILTERED_MS),
    ("tag", "/notes?tag=" + quote("旅行"), FILTERED_MS),
    ("status_backend", "/notes?status=done&backend=gemini", FILTERED_MS),
    ("author_nickname", "/notes?author=" + quote("作者7") + "&sort=likes", FILTERED_MS),
    ("date_range", "/notes?from=2026-11-05&to=2026-11-20", FILTERED_MS),
    (
        "all_filters",
        f"/notes?q={quote('笔记')}&tag={quote('护肤')}&status=done&page=2",
        FILTERED_MS,
    ),
    ("note_page", f"/notes/{note_id(77)}", None),
]


def _get_ms(url: str) -> float:
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: HTTP {response.status}")
    return (time.monotonic() - t0) * 1000


def make_store(data: Path, notes: int) -> None:
    with MongoServer(data, process=True) as server:
        fill(server.uri, "xhs", notes)
        client: MongoClient = MongoClient(server.uri)
        for name, keys in NOTE_INDEXES:
            client.xhs[NOTES].create_index(keys, name=name)
        client.close()


def measure(tmp: Path, notes: int, rounds: int) -> tuple[dict[str, Any], list[Check]]:
    data = tmp / "mongo"
    make_store(data, notes)
    port = free_port()
    env = {**os.environ, "MONGO_URI": "", "MONGO_DATA_DIR": str(data), "MONGO_DATABASE": "xhs",
           "IMAGES_STORE": str(tmp / "images"), "WEB_TOKEN": ""}  # fmt: skip
    t0 = time.monotonic()
    app = subprocess.Popen(
        [sys.executable, "-m", "crawler.web", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    figures: dict[str, Any] = {"notes": notes, "rounds": rounds}
    checks: list[Check] = []
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, timeout=60, alive=lambda: app.poll() is None, what="web app")
        _get_ms(base + "/notes")
        figures["first_load_s"] = round(time.monotonic() - t0, 2)
        for name, path, target in PAGES:
            _get_ms(base + path)  # warm
            times = [_get_ms(base + path) for _ in range(rounds)]
            median = statistics.median(times)
            figures[f"{name}_median_ms"] = round(median)
            figures[f"{name}_max_ms"] = round(max(times))
            if target is not None:
                checks.append(
                    Check(
                        f"GET {unquote(path)} on {notes:,} notes (median of {rounds})",
                        f"< {target} ms",
                        f"{median:.0f} ms (slowest {max(times):.0f})",
                        median < target,
                    )
                )
    finally:
        stop_process(app)
    return figures, checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    notes, rounds = (5000, 3) if args.quick else (20_000, 7)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="web-pages-") as tmp:
        figures, checks = measure(Path(tmp), notes, rounds)
    return finish(
        "web_pages",
        quick=args.quick,
        started=started,
        figures=figures,
        checks=checks,
        notes=[
            "the app as analysts start it: python -m crawler.web over the embedded store "
            "(served in the app's process), timed over HTTP from the benchmark process",
            "every list page first counts the notes (a key scan of the collection: about "
            "150 ms per 20,000 notes here) to see new ones at once; the rest is in memory "
            "plus one _id lookup of the page's notes",
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
