"""crawler/web/charts.py: the data shape ``static/charts.js`` draws (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crawler.web.charts import NOTE_SERIES, USER_SERIES, time_chart
from tests.factories import T0


def test_a_chart_has_iso_times_and_one_series_per_field_with_values() -> None:
    rows = [
        {"crawled_at": T0, "liked": 10, "collected": 2, "comments": 1},
        {"crawled_at": T0 + timedelta(hours=1), "liked": 12, "collected": "3万", "comments": 1},
    ]
    chart = time_chart("Interactions over time", rows, "crawled_at", NOTE_SERIES)
    assert chart == {
        "title": "Interactions over time",
        "x": ["2026-01-05T08:00:00+00:00", "2026-01-05T09:00:00+00:00"],
        "series": [
            {"name": "liked", "y": [10, 12]},
            {"name": "collected", "y": [2, None]},  # not a number: a gap, not a zero
            {"name": "comments", "y": [1, 1]},
        ],  # "shares": no value at all, no series
    }


def test_rows_without_a_time_are_left_out_and_naive_times_read_as_utc() -> None:
    naive = datetime(2026, 1, 5, 8, 0)  # as a driver without tz_aware gives it
    rows = [{"crawled_at": None, "fans": 1}, {"fans": 2}, {"crawled_at": naive, "fans": 3}]
    chart = time_chart("Growth", rows, "crawled_at", USER_SERIES)
    assert chart is not None
    assert chart["x"] == [naive.replace(tzinfo=UTC).isoformat()]
    assert chart["series"] == [{"name": "fans", "y": [3]}]


def test_nothing_to_draw_is_none() -> None:
    assert time_chart("Growth", [], "crawled_at", USER_SERIES) is None
    assert time_chart("Growth", [{"crawled_at": "2026-01-05", "fans": 1}], "crawled_at",
                      USER_SERIES) is None  # fmt: skip
    empty = time_chart("Growth", [{"crawled_at": T0}], "crawled_at", USER_SERIES)
    assert empty == {"title": "Growth", "x": [T0.isoformat()], "series": []}
