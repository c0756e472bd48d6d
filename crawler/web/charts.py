"""Time series for the pages' charts, shaped for ``static/charts.js`` (pure).

A chart is ``{"title", "x": [ISO times], "series": [{"name", "y": [...]}]}``; the page
embeds it as JSON and the browser draws it with the plotly.js bundled in the installed
plotly package (served by the app itself: no request leaves the machine).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crawler.core.timeutil import aware

NOTE_SERIES = ("liked", "collected", "comments", "shares")
USER_SERIES = ("fans", "likes_and_collects", "follows")


def time_chart(
    title: str, rows: Sequence[dict[str, Any]], time_field: str, fields: Sequence[str]
) -> dict[str, Any] | None:
    """``None`` when there is nothing to draw (no row carries a time)."""
    rows = [r for r in rows if isinstance(r.get(time_field), datetime)]
    if not rows:
        return None
    series = [
        {"name": f, "y": [r.get(f) if isinstance(r.get(f), int) else None for r in rows]}
        for f in fields
    ]
    return {
        "title": title,
        "x": [aware(r[time_field]).isoformat() for r in rows],
        "series": [s for s in series if any(v is not None for v in s["y"])],
    }
