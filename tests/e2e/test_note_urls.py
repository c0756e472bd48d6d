"""`scrapy crawl xhs -a urls=… -O notes.jsonl` on the real captured page, served locally.

The page is tests/data/xhs-real/01_… (origin: see tests/data/xhs-real/MANIFEST.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "tests/data/xhs-real/01_note_page_ssr_image_685e9b3d_2025-07-16.html").read_bytes()
NOTE_ID = "685e9b3d00000000240089a5"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith(f"/explore/{NOTE_ID}"):
            body, status = PAGE, 200
        elif self.path.startswith("/explore/"):
            body, status = b"<html><head><title>x</title></head><body>nothing</body></html>", 200
        else:
            body, status = b"not found", 404
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_copy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_crawl_real_page_by_url_to_jsonl(local_copy: str, scrapy_crawl, mongo_uri: str) -> None:
    env = {
        **os.environ,
        "XHS_BASE_URL": local_copy,
        "MONGO_URI": mongo_uri,
        "ENRICH_BACKEND": "off",
    }
    bad_id = "0" * 24
    result = scrapy_crawl(
        "xhs",
        {
            "urls": f"{local_copy}/explore/{NOTE_ID}?xsec_token=T,{local_copy}/explore/{bad_id},notaurl"
        },
        env,
        # the page's image hosts are the real CDN: not reachable here, skip media
        settings={"ITEM_PIPELINES": '{"pipelines.storage.MongoStoragePipeline": 400}'},
    )
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 1, result.log[-3000:]
    note = result.items[0]
    assert note["note_id"] == NOTE_ID
    assert note["title"] == "◾️🟥 「空间结构」的秩序之美"
    assert len(note["images"]) == 18
    assert note["interact"]["liked"] == 300
    assert "搞的就是艺术" in note["tags"]
    assert note["published_at"].startswith("2025-06-27")
    # the page without a note and the bad argument are counted and logged, not fatal
    assert "bad_argument" in result.log and "notaurl" in result.log
    assert "xhs/parse_error/" in result.log
