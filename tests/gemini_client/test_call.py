"""pipelines/gemini/call.py: one call's bookkeeping (CallState), where a request goes
(Pick), and how a call gives up (defer, give_up) with a reason and a resume time."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from pipelines.gemini import (
    ApiKey,
    Failure,
    FailureKind,
    GeminiSettings,
    QuotaDeferred,
    RateLimiter,
)
from pipelines.gemini.call import CallState, Pick, defer, give_up, utc
from tests.gemini_client.helpers import KEY_A1, LITE, START, failure_of

NOW = datetime.fromisoformat(START).timestamp()
SETTINGS = GeminiSettings.from_env_like(
    {"GEMINI_MAX_RETRY_DELAY": "45", "GEMINI_SERVER_ERROR_DEFER": "300"}
)


def test_utc_is_an_aware_utc_datetime() -> None:
    at = utc(NOW)
    assert at.tzinfo is UTC and at.timestamp() == NOW
    assert at == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)


def test_a_pick_names_the_key_by_its_fingerprint_only() -> None:
    key = ApiKey("projA", KEY_A1)
    pick = Pick(LITE, "projA", key, RateLimiter())
    assert pick.where == f"model {LITE}, project projA, key {key.fingerprint}"
    assert KEY_A1 not in pick.where and KEY_A1 not in repr(pick)


def test_each_call_starts_its_own_books() -> None:
    first = CallState(max_output_tokens=1024)
    first.server_errors[LITE] += 1
    first.skipped_models.add(LITE)
    second = CallState()
    assert second.server_errors == Counter() and second.skipped_models == set()
    assert second.waited == 0.0 and second.attempts == second.rate_retries == 0
    assert second.empty_answers == 0 and second.max_output_tokens == 8192
    assert second.last is None and second.timed_out_on is None
    assert first.max_output_tokens == 1024


def test_defer_raises_with_the_reason_the_time_and_the_lastfailure_of() -> None:
    call = CallState(last=failure_of("429_per_day_free_tier.json"))
    stats: Counter[str] = Counter()
    with pytest.raises(QuotaDeferred) as info:
        defer("daily_quota_exhausted", NOW + 60, call, stats)
    assert info.value.reason == "daily_quota_exhausted"
    assert info.value.next_attempt_at == utc(NOW + 60)
    assert info.value.message == (
        "last failure: per_day 429 GenerateRequestsPerDayPerProjectPerModel-FreeTier limit 20"
    )
    assert stats == Counter({"deferred/daily_quota_exhausted": 1})
    with pytest.raises(QuotaDeferred) as bare:
        defer("rate_limited", NOW, CallState(), stats)
    assert bare.value.message == "" and stats["deferred/rate_limited"] == 1


@pytest.mark.parametrize(
    ("last", "reason", "after"),
    [
        ("429_input_tokens_per_minute.json", "rate_limited", 45.0),
        ("429_bare.json", "rate_limited", 45.0),
        ("503_overloaded.json", "server_errors", 300.0),
        (None, "server_errors", 300.0),
    ],
)
def test_give_up_defers_by_what_failed_last(last: str | None, reason: str, after: float) -> None:
    call = CallState(last=failure_of(last) if last else None)
    stats: Counter[str] = Counter()
    with pytest.raises(QuotaDeferred) as info:
        give_up(NOW, call, SETTINGS, stats)
    assert info.value.reason == reason
    assert info.value.next_attempt_at == utc(NOW + after)
    assert stats == Counter({f"deferred/{reason}": 1})


def test_give_up_after_a_timeout_is_a_server_error_deferral() -> None:
    call = CallState(last=Failure(FailureKind.TIMEOUT, message="ReadTimeout"))
    with pytest.raises(QuotaDeferred) as info:
        give_up(NOW, call, SETTINGS, Counter())
    assert info.value.reason == "server_errors"
    assert "timeout ReadTimeout" in info.value.message
