"""The run summary's text (the pure part of the extension; the progress line:
tests/crawler/test_progress.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from crawler.extensions.progress import Counts
from crawler.extensions.run_summary import RunNotes, store_location, summary_text
from crawler.report import display_width, fit
from crawler.spiders.inputs import Refused


def test_creator_profiles_are_not_counted_as_notes() -> None:
    stats = {"item_scraped_count": 7, "profiles/parsed": 2}
    assert Counts.of(stats).stored == 5
    text = summary_text(run_id="R", spider="xhs", reason="finished", exit_status=0,
                        elapsed_s=None, stats=stats, notes=None, refused=[], places=[])  # fmt: skip
    assert "5 stored" in text and "creators    2 profiles stored" in text


def test_fit_pads_and_cuts_by_display_width() -> None:
    assert display_width("面经abc") == 7
    assert fit("面经分享：大厂算法岗", 12) == "面经分享：… "
    assert display_width(fit("面经分享：大厂算法岗", 12)) == 12
    assert fit("7", 4, align="right") == "   7"


def test_summary_text() -> None:
    notes = RunNotes(
        rows=[{"_id": "n1", "title": "面经分享", "images": [{}, {}], "interact": {"liked": 5},
               "enrichment": {"status": "done", "backend": "local", "result": {"summary": "要点"}}},
              {"_id": "n2", "title": "plain title", "images": [],
               "enrichment": {"status": "deferred", "backend": "none"}}],
        total=3, by_backend={"local": 1},
        deferred_until=datetime(2026, 12, 2, 8, 0, tzinfo=UTC),
    )  # fmt: skip
    stats = {"item_scraped_count": 3, "notes/new": 1, "notes/changed": 1, "notes/unchanged": 1,
             "media/images_ok": 2, "enrich/done": 1, "enrich/deferred": 1,
             "gemini/requests/gemini-2.5-flash": 4, "gemini/429/per_minute": 2}  # fmt: skip
    text = summary_text(
        run_id="R1", spider="xhs", reason="finished", exit_status=0, elapsed_s=75, stats=stats,
        notes=notes, refused=[Refused("javascript:x", "bad_argument", "urls= javascript: refused")],
        places=[("report", "data/reports/run-R1.html")],
    )  # fmt: skip
    assert "Run R1 (xhs): finished, exit status 0, 1m 15s" in text
    assert "3 stored: 1 new, 1 changed, 1 unchanged" in text
    assert "1 done (local 1)" in text and "1 deferred until 2026-12-02 08:00 UTC" in text
    assert "Gemini      4 requests, 2 answered 429" in text
    assert "refused     1 input(s):" in text and "urls= javascript: refused" in text
    assert "… and 1 more" in text and "data/reports/run-R1.html" in text
    rows = [line for line in text.splitlines() if "done/local" in line or "deferred/none" in line]
    starts = {display_width(row.split("done/")[0] if "done/" in row else row.split("deferred/")[0])
              for row in rows}  # fmt: skip
    assert len(starts) == 1, rows


def test_store_location_never_shows_credentials() -> None:
    settings = {"MONGO_URI": "mongodb://user:s3cret@db.example:27017/x", "MONGO_DATABASE": "xhs"}
    where = store_location(SimpleNamespace(get=settings.get))
    assert where == "MongoDB at db.example (MONGO_URI), database xhs" and "s3cret" not in where
