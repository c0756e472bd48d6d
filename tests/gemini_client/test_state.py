"""Quota state: JSON-able, Mongo-safe, round-trips, ignores stale and broken records."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pipelines.gemini import (
    MemoryStateStore,
    ModelLimits,
    QuotaState,
    QuotaStateStore,
    next_pacific_midnight,
)

NOW = datetime.fromisoformat("2026-11-29T15:00:00+00:00").timestamp()
MIDNIGHT = next_pacific_midnight(NOW)


def _field_names(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for k in value] + [n for v in value.values() for n in _field_names(v)]
    if isinstance(value, list):
        return [n for v in value for n in _field_names(v)]
    return []


def _populated() -> QuotaState:
    state = QuotaState({"gemini-2.5-flash-lite": ModelLimits(rpm=15)})
    state.mark_exhausted("projA", "gemini-2.5-flash-lite", MIDNIGHT, "per_day")
    state.mark_exhausted("projA", "gemini-2.5-flash", NOW - 1, "per_day")  # already over
    state.learn("projA", "gemini-2.5-flash-lite", ModelLimits(rpd=20))
    state.limiter("projB", "gemini-2.5-flash-lite").record(NOW - 30, 100)
    state.limiter("projB", "gemini-2.5-flash-lite").record(NOW - 20, 100)
    state.drop_model("gemini-1.5-flash", "model_not_found", NOW)
    state.drop_for_project("projB", "gemini-2.0-flash", "limit_zero", NOW)
    state.disable_key("k:1a2b3c4d", "projC", "bad_key", NOW)
    return state


def test_to_dict_is_json_and_mongo_safe() -> None:
    data = _populated().to_dict(NOW)
    assert json.loads(json.dumps(data)) == data
    assert not [n for n in _field_names(data) if "." in n or n.startswith("$")]
    assert data["exhausted"] == [
        {
            "project": "projA",
            "model": "gemini-2.5-flash-lite",
            "until": "2026-11-30T08:00:00+00:00",
            "reason": "per_day",
        }
    ]
    assert data["day_counts"] == [
        {"project": "projB", "model": "gemini-2.5-flash-lite", "day": "2026-11-29", "count": 2}
    ]
    assert data["learned_limits"] == [
        {"project": "projA", "model": "gemini-2.5-flash-lite", "rpm": None, "tpm": None, "rpd": 20}
    ]
    assert data["disabled_keys"][0]["key_fp"] == "k:1a2b3c4d"


def test_round_trip() -> None:
    data = _populated().to_dict(NOW)
    loaded = QuotaState({"gemini-2.5-flash-lite": ModelLimits(rpm=15)})
    loaded.load(data, NOW + 60)
    assert loaded.exhausted_until("projA", "gemini-2.5-flash-lite", NOW + 60) == MIDNIGHT
    assert loaded.exhausted_until("projA", "gemini-2.5-flash", NOW + 60) is None
    assert loaded.limiter("projA", "gemini-2.5-flash-lite").limits == ModelLimits(rpm=15, rpd=20)
    assert loaded.limiter("projB", "gemini-2.5-flash-lite").day_count == 2
    assert loaded.is_model_dropped("gemini-1.5-flash")
    assert loaded.is_dropped_for_project("projB", "gemini-2.0-flash")
    assert not loaded.is_dropped_for_project("projA", "gemini-2.0-flash")
    assert loaded.is_key_disabled("k:1a2b3c4d")
    assert loaded.disabled_key_reason("k:1a2b3c4d") == "bad_key"
    assert loaded.to_dict(NOW + 60)["exhausted"] == data["exhausted"]


def test_next_day_load_forgets_the_day() -> None:
    data = _populated().to_dict(NOW)
    tomorrow = QuotaState()
    tomorrow.load(data, MIDNIGHT + 1)
    assert tomorrow.exhausted_until("projA", "gemini-2.5-flash-lite", MIDNIGHT + 1) is None
    assert tomorrow.limiter("projB", "gemini-2.5-flash-lite").day_count == 0
    # Learned limits, drops and disabled keys outlive the day.
    assert tomorrow.limiter("projA", "gemini-2.5-flash-lite").limits.rpd == 20
    assert tomorrow.is_key_disabled("k:1a2b3c4d")


def test_broken_records_and_versions_are_skipped() -> None:
    data = _populated().to_dict(NOW)
    data["exhausted"].insert(0, {"project": "projX", "until": "not a date"})
    data["day_counts"].append({"project": "p", "model": "m", "day": "2026-11-29", "count": "many"})
    data["disabled_keys"].append("junk")
    state = QuotaState()
    state.load(data, NOW)
    assert state.exhausted_until("projA", "gemini-2.5-flash-lite", NOW) == MIDNIGHT
    assert state.is_key_disabled("k:1a2b3c4d")
    other = QuotaState()
    other.load({**data, "version": 99}, NOW)
    assert other.exhausted_until("projA", "gemini-2.5-flash-lite", NOW) is None
    QuotaState().load({}, NOW)


async def test_memory_store_copies() -> None:
    store = MemoryStateStore()
    assert isinstance(store, QuotaStateStore)
    assert await store.load() == {}
    data = _populated().to_dict(NOW)
    await store.save(data)
    data["exhausted"].clear()
    loaded = await store.load()
    assert loaded["exhausted"] and store.saves == 1
    loaded["exhausted"].clear()
    assert store.state["exhausted"]
