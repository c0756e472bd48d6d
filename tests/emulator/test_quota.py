"""Quota through the real google-genai SDK: per-day, per-minute, input tokens, limit 0."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from google.genai import errors

from sandbox.gemini import Clock
from tests.emulator.helpers import client, details_of, fixture_body, shape

PACIFIC = ZoneInfo("America/Los_Angeles")
MODEL = "gemini-2.5-flash-lite"


def two_projects(**limits: int) -> dict:
    return {
        "projects": {
            "alpha": {"keys": ["key-a1", "key-a2"], "limits": {MODEL: limits}},
            "beta": {"keys": ["key-b1"], "limits": {MODEL: limits}},
        }
    }


def test_daily_quota_is_per_project_and_resets_at_pacific_midnight(make_gemini_emulator):
    clock = Clock(datetime(2026, 11, 29, 23, 50, tzinfo=PACIFIC), frozen=True)
    emu = make_gemini_emulator(two_projects(rpd=20), clock=clock)
    first, second, other = client(emu, "key-a1"), client(emu, "key-a2"), client(emu, "key-b1")

    for _ in range(20):
        assert first.models.generate_content(model=MODEL, contents="hi").text
    with pytest.raises(errors.ClientError) as caught:
        first.models.generate_content(model=MODEL, contents="hi")

    err = caught.value
    assert err.code == 429 and err.status == "RESOURCE_EXHAUSTED"
    real = fixture_body("429_per_day_free_tier.json")
    assert shape(err.details) == shape(real)
    violation = details_of(err.details, "QuotaFailure")["violations"][0]
    assert violation["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    assert violation["quotaValue"] == "20"
    assert violation["quotaDimensions"] == {"location": "global", "model": MODEL}
    assert details_of(err.details, "RetryInfo")["retryDelay"].endswith("s")
    assert f"limit: 20, model: {MODEL}\nPlease retry in " in err.message

    # Keys share their project's quota; another project has its own.
    with pytest.raises(errors.ClientError) as again:
        second.models.generate_content(model=MODEL, contents="hi")
    assert again.value.code == 429
    assert other.models.generate_content(model=MODEL, contents="hi").text

    # Still the same quota day one second before midnight, a new one right after.
    clock.set(datetime(2026, 11, 29, 23, 59, 59, tzinfo=PACIFIC))
    with pytest.raises(errors.ClientError):
        first.models.generate_content(model=MODEL, contents="hi")
    clock.set(datetime(2026, 11, 30, 0, 0, 1, tzinfo=PACIFIC))
    assert first.models.generate_content(model=MODEL, contents="hi").text

    statuses = [r.status for r in emu.requests if r.project == "alpha"]
    assert statuses == [200] * 20 + [429, 429, 429, 200]
    refused = [r for r in emu.requests if r.status == 429]
    assert {r.error for r in refused} == {"quota_per_day"}
    assert all(r.key_fp.startswith("k:") and "key-" not in r.key_fp for r in emu.requests)


def test_used_up_day_and_paid_tier_quota_id(make_gemini_emulator):
    emu = make_gemini_emulator(
        {
            "projects": {
                "spent": {"keys": ["k-spent"], "limits": {MODEL: {"rpd": 20, "used_today": 20}}},
                "paid": {"tier": "paid", "keys": ["k-paid"], "limits": {MODEL: {"rpd": 1}}},
            }
        }
    )
    spent_client = client(emu, "k-spent")
    with pytest.raises(errors.ClientError) as spent:
        spent_client.models.generate_content(model=MODEL, contents="hi")
    assert details_of(spent.value.details, "QuotaFailure")["violations"][0]["quotaValue"] == "20"

    paid = client(emu, "k-paid")
    paid.models.generate_content(model=MODEL, contents="hi")
    with pytest.raises(errors.ClientError) as caught:
        paid.models.generate_content(model=MODEL, contents="hi")
    violation = details_of(caught.value.details, "QuotaFailure")["violations"][0]
    assert violation["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel"


async def test_per_minute_limit_frees_after_the_window(make_gemini_emulator):
    clock = Clock(datetime(2026, 11, 29, 12, 0, 0, tzinfo=PACIFIC), frozen=True)
    emu = make_gemini_emulator(two_projects(rpm=2), clock=clock)
    aio = client(emu, "key-a1").aio
    try:
        await aio.models.generate_content(model=MODEL, contents="one")
        clock.advance(10)
        await aio.models.generate_content(model=MODEL, contents="two")
        with pytest.raises(errors.ClientError) as caught:
            await aio.models.generate_content(model=MODEL, contents="three")
        violation = details_of(caught.value.details, "QuotaFailure")["violations"][0]
        assert violation["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
        assert violation["quotaValue"] == "2"
        # The first call leaves the window 60 s after it was made: 50 s from now.
        assert details_of(caught.value.details, "RetryInfo")["retryDelay"] == "50s"
        assert "Please retry in 50s." in caught.value.message

        clock.advance(49)
        with pytest.raises(errors.ClientError):
            await aio.models.generate_content(model=MODEL, contents="three")
        clock.advance(1)
        response = await aio.models.generate_content(model=MODEL, contents="three")
        assert response.text
    finally:
        await aio.aclose()


def test_input_tokens_per_minute(make_gemini_emulator):
    clock = Clock(datetime(2026, 11, 29, 12, 0, 0, tzinfo=PACIFIC), frozen=True)
    emu = make_gemini_emulator(two_projects(tpm=100), clock=clock)
    sdk = client(emu, "key-b1")
    sdk.models.generate_content(model=MODEL, contents="x" * 300)  # 75 tokens
    with pytest.raises(errors.ClientError) as caught:
        sdk.models.generate_content(model=MODEL, contents="x" * 200)  # 50 more: over 100
    real = fixture_body("429_input_tokens_per_minute.json")
    assert shape(caught.value.details) == shape(real)
    violation = details_of(caught.value.details, "QuotaFailure")["violations"][0]
    assert violation["quotaId"] == "GenerateContentInputTokensPerModelPerMinute-FreeTier"
    assert violation["quotaValue"] == "100"
    assert details_of(caught.value.details, "RetryInfo")["retryDelay"] == "60s"
    clock.advance(60)
    assert sdk.models.generate_content(model=MODEL, contents="x" * 200).text
    assert [r.prompt_tokens for r in emu.requests] == [75, 50, 50]


def test_limit_zero_model(make_gemini_emulator):
    emu = make_gemini_emulator(
        {"projects": {"p": {"keys": ["k"], "limits": {"gemini-2.5-pro": {"rpd": 0}}}}}
    )
    sdk = client(emu, "k")
    with pytest.raises(errors.ClientError) as caught:
        sdk.models.generate_content(model="gemini-2.5-pro", contents="hi")
    real = fixture_body("429_limit_zero_all_metrics.json")
    assert shape(caught.value.details) == shape(real)
    assert "limit: 0, model: gemini-2.5-pro" in caught.value.message
    violations = details_of(caught.value.details, "QuotaFailure")["violations"]
    assert {v["quotaDimensions"]["model"] for v in violations} == {"gemini-2.5-pro"}
    # Other models of the project keep their (default) quota.
    assert sdk.models.generate_content(model="gemini-2.5-flash", contents="hi").text


def test_control_consume_and_clock_over_the_api(make_gemini_emulator):
    start = datetime(2026, 3, 7, 23, 0, tzinfo=PACIFIC)
    emu = make_gemini_emulator(two_projects(rpd=5), clock=Clock(start, frozen=True))
    state = emu.control(consume=[{"project": "alpha", "model": MODEL, "requests": 5}])
    assert state["quota"][0]["requests_today"] == 5
    assert state["quota"][0]["day_resets_at"] == "2026-03-08T08:00:00+00:00"
    sdk = client(emu, "key-a1")
    with pytest.raises(errors.ClientError):
        sdk.models.generate_content(model=MODEL, contents="hi")
    # Two hours later it is 01:00 on the 8th (the day DST starts): a new quota day.
    emu.control(clock_advance=timedelta(hours=2).total_seconds())
    assert sdk.models.generate_content(model=MODEL, contents="hi").text
