"""`scrapy crawl xhs -a urls=… -O notes.jsonl` on the real captured page, served locally.

The page is tests/data/xhs-real/01_… (origin: see tests/data/xhs-real/MANIFEST.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media.server import MediaServer

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "tests/data/xhs-real/01_note_page_ssr_image_685e9b3d_2025-07-16.html").read_bytes()
NOTE_ID = "685e9b3d00000000240089a5"
BAD_ID = "0" * 24


@pytest.fixture
def local_copy() -> Iterator[str]:
    """The captured page at its note's path, a page without a note at another note id's
    (any other path: 404)."""
    server = MediaServer()
    html = {"content_type": "text/html", "charset": "utf-8"}
    server.add(f"/explore/{NOTE_ID}", PAGE, **html)
    nothing = b"<html><head><title>x</title></head><body>nothing</body></html>"
    server.add(f"/explore/{BAD_ID}", nothing, **html)
    with server.running():
        yield server.base_url


def test_crawl_real_page_by_url_to_jsonl(local_copy: str, scrapy_crawl, mongo_uri: str) -> None:
    env = {
        **os.environ,
        "XHS_BASE_URL": local_copy,
        "MONGO_URI": mongo_uri,
        "ENRICH_BACKEND": "off",
    }
    result = scrapy_crawl(
        "xhs",
        {
            "urls": f"{local_copy}/explore/{NOTE_ID}?xsec_token=T,{local_copy}/explore/{BAD_ID},notaurl"
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
