"""The persisted Gemini quota state (``pipelines/gemini/state.py``) as rows for a table.

One row per (project, model) that the state mentions: today's requests (the Pacific
quota day), out-until and why, learned limits. Keys appear only as the fingerprints
the state already holds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")


def pacific_day(now: datetime) -> date:
    """The quota day ``now`` falls on: Gemini's daily quotas reset at Pacific midnight
    (the client counts ``day_counts`` by the same day)."""
    return now.astimezone(PACIFIC).date()


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def quota_rows(state: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    today = pacific_day(now).isoformat()
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(rec: dict[str, Any]) -> dict[str, Any]:
        key = (str(rec.get("project")), str(rec.get("model")))
        return rows.setdefault(
            key,
            {"project": key[0], "model": key[1], "today": 0, "blocked_until": None,
             "blocked_reason": None, "rpm": None, "tpm": None, "rpd": None, "dropped": None},
        )  # fmt: skip

    for rec in state.get("day_counts") or []:
        r = row(rec)
        if rec.get("day") == today:
            r["today"] += int(rec.get("count") or 0)
    for rec in state.get("exhausted") or []:
        until = _when(rec.get("until"))
        r = row(rec)
        if until is not None and until > now:
            r["blocked_until"], r["blocked_reason"] = until, rec.get("reason")
    for rec in state.get("learned_limits") or []:
        r = row(rec)
        r.update({k: rec.get(k) for k in ("rpm", "tpm", "rpd")})
    for rec in state.get("dropped_for_project") or []:
        row(rec)["dropped"] = rec.get("reason")
    return sorted(rows.values(), key=lambda r: (r["project"], r["model"]))


def quota_view(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "rows": quota_rows(state, now),
        "today": pacific_day(now).isoformat(),
        "dropped_models": list(state.get("dropped_models") or []),
        "disabled_keys": [
            {"key_fp": k.get("key_fp"), "project": k.get("project"), "reason": k.get("reason")}
            for k in state.get("disabled_keys") or []
        ],
        "saved_at": _when(state.get("saved_at")),
    }
