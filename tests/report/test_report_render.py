"""The run report's pure parts: integer count axes, escaping, links, thumbnails, size."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.report import render_report
from crawler.report._data import MAX_NOTES
from crawler.report._html import PLOTLY_JS, count_axis, ensure_plotly_js, images_relative, nice_step

STARTED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _data(notes: int = 3, **run: object) -> dict:
    docs = [
        {
            "_id": f"{i:024x}",
            "title": f"笔记 <{i}>",
            "url": f"https://www.xiaohongshu.com/explore/{i:024x}?xsec_token=T&xsec_source=pc_search",
            "user": {"nickname": "作者"},
            "interact": {"liked": 10 * i},
            "images": [{"status": "ok", "path": f"full/ab/{i}.jpg"}],
            "enrichment": {
                "status": "done",
                "backend": "local",
                "result": {"summary": "摘要 & 更多"},
            },
        }
        for i in range(notes)
    ]
    return {
        "run": {
            "_id": "20261201T100000Z-abc123",
            "spider": "xhs",
            "args": {"keywords": "面经"},
            "started_at": STARTED,
            "finished_at": datetime(2026, 12, 1, 10, 2, tzinfo=UTC),
            "notes": {"scraped": notes, "pages": 2 * notes, "new": notes},
            "images": {"ok": notes},
            "errors_by_reason": {"xsec_token_invalid": 1},
            **run,
        },
        "note_count": notes,
        "notes": docs,
        "failures": [
            {"url": "javascript:alert(1)", "reason": "bad_argument", "message": "<b>x</b>"}
        ],
        "per_day": [("2026-11-30", 2), ("2026-12-01", 1)],
        "tags": [("面经", 3)],
        "enrichment": [("done", notes)],
    }


@pytest.mark.parametrize(
    ("top", "step"), [(0, 1), (1, 1), (3, 1), (7, 2), (12, 2), (40, 10), (999, 200)]
)
def test_count_axes_have_whole_steps(top: int, step: int) -> None:
    assert nice_step(top) == step
    axis = count_axis([top])
    assert axis["dtick"] == step and axis["tickformat"] == ",d" and axis["rangemode"] == "tozero"


def test_report_links_escapes_and_refers_to_the_shared_script() -> None:
    page = render_report(_data(), images_rel="../images")
    assert f'<script src="{PLOTLY_JS}"></script>' in page
    assert '<script src="report.js"></script>' in page and "plotly.js v" not in page  # not embedded
    # no inline script (the web app's CSP is script-src 'self'): figures are data blocks
    assert len(re.findall(r"<script>", page)) == 0
    assert page.count('<script type="application/json" class="figure">') == 7
    assert (
        'href="https://www.xiaohongshu.com/explore/000000000000000000000001?xsec_token=T&amp;xsec_source=pc_search"'
        in page
    )
    assert "笔记 &lt;1&gt;" in page and "<b>x</b>" not in page and "摘要 &amp; 更多" in page
    assert 'src="../images/full/ab/2.jpg"' in page
    assert 'href="javascript' not in page  # a failure's "URL" that is not http(s) is text
    assert "120 s" in page and "1.5 notes/min" in page  # duration and throughput


def test_report_size_stays_small_for_a_big_run() -> None:
    data = _data(notes=MAX_NOTES)
    data["note_count"] = 5000  # the table stops at MAX_NOTES rows and says so
    page = render_report(data, images_rel="../images")
    assert len(page.encode()) < 300_000
    assert "… and 4500 more notes" in page


def test_plotly_js_is_copied_once(tmp_path: Path) -> None:
    target = ensure_plotly_js(tmp_path)
    first = target.stat().st_mtime_ns
    assert target.stat().st_size > 1_000_000
    assert ensure_plotly_js(tmp_path).stat().st_mtime_ns == first
    assert (tmp_path / "report.js").read_text().count("Plotly.newPlot") == 1


def test_page_text_cannot_close_a_figure_block() -> None:
    data = _data()
    data["tags"] = [("</script><script>alert(1)</script>", 1)]
    page = render_report(data)
    assert "<script>alert(1)" not in page and "alert(1)" in page  # escaped inside the JSON


def test_images_store_relative_to_the_reports(tmp_path: Path) -> None:
    assert images_relative(tmp_path / "reports", str(tmp_path / "images")) == "../images"
    assert images_relative(tmp_path, "s3://bucket/images") is None
