"""crawler/extensions/progress.py: the periodic progress line and the run's target."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scrapy.exceptions import NotConfigured

from crawler.core.run_context import RunContext
from crawler.extensions.progress import (
    Counts,
    Progress,
    duration,
    progress_line,
    target_of,
)
from tests.factories import project_crawler


def _counts(**values: int) -> Counts:
    base = dict.fromkeys(("listed", "fetched", "images", "enriched", "stored", "deferred",
                          "gemini", "r429"), 0)  # fmt: skip
    return Counts(**{**base, **values})


def test_progress_line_has_target_percent_rate_eta_and_stages() -> None:
    line = progress_line(_counts(listed=60, fetched=25, images=80, enriched=20, stored=20), 60, 120)
    assert line.startswith("Progress: 20/60 notes (33%), 10.0/min, ETA 4m 00s | ")
    assert "listed 60, fetched 25, images 80, enriched 20, stored 20, deferred 0" in line
    assert progress_line(_counts(), 60, 2).startswith(
        "Progress: 0/60 notes (0%), 0.0/min, ETA unknown"
    )
    assert "ETA done" in progress_line(_counts(stored=60), 60, 30)
    assert progress_line(_counts(), 0, 2).startswith("Progress: 0/? notes, ")
    assert duration(3725) == "1h 02m" and duration(59) == "59s"


def test_target_is_max_notes_else_what_is_known() -> None:
    assert target_of(SimpleNamespace(max_notes=40, scheduled={"a"}), _counts(listed=100)) == 40
    assert target_of(SimpleNamespace(max_notes=None, scheduled={"a", "b"}), _counts(listed=7)) == 7
    assert target_of(SimpleNamespace(limit=None), _counts(fetched=3), backlog_due=12) == 12


def test_counts_read_the_stages_from_the_stats() -> None:
    counts = Counts.of({
        "xhs/listing_refs": 9, "xhs/notes_parsed": 4, "enrich_backlog/notes": 2,
        "media/images_ok": 11, "enrich/done": 3, "enrich/deferred": 1,
        "item_scraped_count": 6, "profiles/parsed": 1,
        "gemini/requests/gemini-2.5-flash": 5, "gemini/requests/gemini-2.5-pro": 2,
        "gemini/429/per_minute": 1, "gemini/429/per_day": 2,
    })  # fmt: skip
    assert counts == Counts(listed=9, fetched=6, images=11, enriched=3, stored=5, deferred=1,
                            gemini=7, r429=3)  # fmt: skip


def test_the_target_is_published_even_with_the_line_off() -> None:
    crawler = project_crawler({"PROGRESS_INTERVAL": 0})
    with pytest.raises(NotConfigured, match="PROGRESS_INTERVAL is 0"):
        Progress.from_crawler(crawler)
    context = RunContext.of(crawler)
    assert context.notes_target is not None
    assert context.notes_target() == 0  # no spider yet
    crawler.spider = SimpleNamespace(max_notes=None, scheduled={"a", "b", "c"})
    crawler.stats.set_value("xhs/listing_refs", 2)
    assert context.notes_target() == 3
    context.backlog_due = 8  # read when asked, not when published
    assert context.notes_target() == 8


def test_the_line_is_on_at_its_interval() -> None:
    crawler = project_crawler({"PROGRESS_INTERVAL": 15})
    progress = Progress.from_crawler(crawler)
    assert progress.interval == 15 and RunContext.of(crawler).notes_target is not None
