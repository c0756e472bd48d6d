"""GeminiClient with the real google-genai SDK against the Gemini emulator over TCP.

Most emulators here run on a frozen clock shared with the client, and the client's
injected sleep advances that clock: minutes and days pass without waiting. Only the
retryDelay test sleeps for real (~2 s), as it measures real time between requests.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from google.genai import types
from PIL import Image
from pymongo import AsyncMongoClient

from pipelines.gemini import (
    BadInput,
    ContentBlocked,
    EnrichmentUnavailable,
    GeminiClient,
    GeminiSettings,
    MemoryStateStore,
    QuotaDeferred,
    TruncatedOutput,
    key_fingerprint,
    next_pacific_midnight,
)
from pipelines.mongo import MongoQuotaStateStore
from tests.gemini_client.helpers import (
    FLASH,
    KEY_A1,
    KEY_A2,
    KEY_B1,
    LITE,
    NEXT_MIDNIGHT,
    PROMPT,
    RETIRED,
    NoteSummary,
    assert_no_secrets,
    close_all,
    frozen_config,
    generate_calls,
    project,
)


def _png(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, "PNG")
    return buf.getvalue()


async def test_old_script_situation(make_gemini_emulator, client_factory, caplog) -> None:
    """Project A spent its 20 RPD, the retired 1.5 model is first: B serves all 30 calls."""
    emu = make_gemini_emulator(
        frozen_config(
            {
                "projA": project("projA", [KEY_A1], **{LITE: {"rpd": 20, "used_today": 20}}),
                "projB": project("projB", [KEY_B1], **{LITE: {"rpd": 50}}),
            },
            default_limits={"rpd": 100},
        )
    )
    store = MemoryStateStore()
    keys = f"projA:{KEY_A1},projB:{KEY_B1}"
    client = client_factory(emu, keys, f"{RETIRED},{LITE}", store, GEMINI_LIMITS=f"{LITE}:rpd=50")
    with caplog.at_level(logging.INFO, logger="pipelines.gemini"):
        await client.start()
        results = await asyncio.gather(*(client.generate([PROMPT], NoteSummary) for _ in range(19)))
        results += [await client.generate([PROMPT], NoteSummary) for _ in range(11)]
        await client.close()
    assert len(results) == 30
    assert {(g.project, g.model, g.key_fp) for g in results} == {
        ("projB", LITE, key_fingerprint(KEY_B1))
    }
    assert all(isinstance(g.parsed, NoteSummary) and g.parsed.summary for g in results)
    calls = generate_calls(emu)
    by_project = Counter((r.project, r.status) for r in calls)
    assert by_project == {("projA", 429): 1, ("projB", 200): 30}
    assert not [r for r in calls if r.model == RETIRED]  # models.list filtered it
    dropped = [
        r for r in caplog.records if RETIRED in r.getMessage() and "dropped" in r.getMessage()
    ]
    assert len(dropped) == 1 and dropped[0].levelno == logging.WARNING
    assert client.stats["429/per_day"] == 1
    assert client.stats[f"requests_by_key/{key_fingerprint(KEY_B1)}"] == 30
    assert store.state["exhausted"] == [
        {"project": "projA", "model": LITE, "until": NEXT_MIDNIGHT.isoformat(), "reason": "per_day"}
    ]

    # The next scheduled run, an hour later, loads that state: A gets nothing.
    emu.control(clock_advance=3600, clear_log=True)
    again = client_factory(emu, keys, f"{RETIRED},{LITE}", store)
    served = [await again.generate([PROMPT], NoteSummary) for _ in range(5)]
    await again.close()
    assert {g.project for g in served} == {"projB"}
    assert Counter(r.project for r in generate_calls(emu)) == {"projB": 5}
    assert_no_secrets(caplog.text, store.state, client.stats)


async def test_listed_but_retired_model_is_requested_once(
    make_gemini_emulator, client_factory, caplog
) -> None:
    """When models.list still offers a model that answers 404, one request drops it for good."""
    emu = make_gemini_emulator(
        frozen_config(
            {"projA": project("projA", [KEY_A1])},
            models={RETIRED: {"retired": False}},
            script=[{"model": RETIRED, "times": 50, "outcome": "404"}],
        )
    )
    store = MemoryStateStore()
    client = client_factory(emu, f"projA:{KEY_A1}", f"{RETIRED},{LITE}", store)
    with caplog.at_level(logging.WARNING, logger="pipelines.gemini"):
        results = [await client.generate([PROMPT], NoteSummary) for _ in range(5)]
    await client.close()
    assert {g.model for g in results} == {LITE}
    assert Counter((r.model, r.status) for r in generate_calls(emu)) == {
        (RETIRED, 404): 1,
        (LITE, 200): 5,
    }
    assert client.models == (LITE,)
    assert [d["model"] for d in store.state["dropped_models"]] == [RETIRED]
    assert "gemini-1.5-flash is not found for API version v1beta" in caplog.text  # pinned version


async def test_per_minute_429_waits_retry_delay(make_gemini_emulator) -> None:
    """retryDelay 2s → the retry goes 2.0–3.0 s later (real time, emulator log times)."""
    emu = make_gemini_emulator(
        {
            "projects": {"projA": project("projA", [KEY_A1])},
            "script": [{"key": KEY_A1, "outcome": "429_minute", "retry_delay": 2}],
        }
    )
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": f"projA:{KEY_A1}",
            "GEMINI_MODELS": LITE,
            "GEMINI_BASE_URL": emu.base_url,
        }
    )
    async with GeminiClient(settings) as client:
        result = await client.generate([PROMPT], NoteSummary)
    first, second = generate_calls(emu)
    assert (first.status, first.error, second.status) == (429, "quota_per_minute", 200)
    gap = (second.time - first.time).total_seconds()
    assert 2.0 <= gap <= 3.0, gap
    assert (result.model, result.project) == (LITE, "projA")
    assert client.stats["429/per_minute"] == 1 and client.stats["waits"] == 1


async def test_per_minute_wait_is_capped(make_gemini_emulator, client_factory, sleeps) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {"projA": project("projA", [KEY_A1])},
            script=[{"outcome": "429_minute", "retry_delay": 600}],
        )
    )
    client = client_factory(emu, f"projA:{KEY_A1}", LITE, GEMINI_MAX_RETRY_DELAY="20")
    await client.generate([PROMPT], NoteSummary)
    await client.close()
    assert len(sleeps) == 1 and 20.0 - 1e-6 <= sleeps[0] <= 20.0


async def test_learns_rpm_and_stops_seeing_429(
    make_gemini_emulator, client_factory, sleeps
) -> None:
    """RPM 2 on the server, unknown to the client: one 429 teaches it the limit."""
    emu = make_gemini_emulator(
        frozen_config({"projA": project("projA", [KEY_A1], **{LITE: {"rpm": 2}})})
    )
    client = client_factory(emu, f"projA:{KEY_A1}", LITE)
    results = [await client.generate([PROMPT], NoteSummary) for _ in range(6)]
    await client.close()
    assert len(results) == 6
    statuses = Counter(r.status for r in generate_calls(emu))
    assert statuses == {200: 6, 429: 1}
    assert client.state.limiter("projA", LITE).limits.rpm == 2
    assert sleeps and max(sleeps) <= 66.0


async def test_rate_limited_beyond_max_wait_defers(make_gemini_emulator, client_factory) -> None:
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1])}))
    client = client_factory(
        emu, f"projA:{KEY_A1}", LITE, GEMINI_LIMITS=f"{LITE}:rpm=1", GEMINI_MAX_WAIT="5"
    )
    await client.generate([PROMPT], NoteSummary)
    sent_at = emu.clock.time()
    with pytest.raises(QuotaDeferred) as info:
        await client.generate([PROMPT], NoteSummary)
    await client.close()
    assert info.value.reason == "rate_limited"
    assert info.value.next_attempt_at.timestamp() == pytest.approx(sent_at + 61, abs=0.5)
    assert len(generate_calls(emu)) == 1


async def test_all_projects_out_for_the_day_defers_to_pacific_midnight(
    make_gemini_emulator, client_factory
) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {
                "projA": project(
                    "projA", [KEY_A1, KEY_A2], **{LITE: {"rpd": 20, "used_today": 20}}
                ),
                "projB": project("projB", [KEY_B1], **{LITE: {"rpd": 20, "used_today": 20}}),
            }
        )
    )
    store = MemoryStateStore()
    client = client_factory(emu, f"projA:{KEY_A1},projA:{KEY_A2},projB:{KEY_B1}", LITE, store)
    with pytest.raises(QuotaDeferred) as info:
        await client.generate([PROMPT], NoteSummary)
    assert info.value.reason == "daily_quota_exhausted"
    assert info.value.next_attempt_at == NEXT_MIDNIGHT
    assert str(info.value) == (
        "daily_quota_exhausted: last failure: per_day 429 "
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier limit 20"
    )
    assert next_pacific_midnight(emu.clock.time()) == NEXT_MIDNIGHT.timestamp()
    # One request per project (the second key of A shares A's quota: never tried).
    assert Counter((r.project, r.status) for r in generate_calls(emu)) == {
        ("projA", 429): 1,
        ("projB", 429): 1,
    }
    with pytest.raises(QuotaDeferred):
        await client.generate([PROMPT], NoteSummary)
    assert len(generate_calls(emu)) == 2
    assert_no_secrets(info.value, store.state)

    emu.clock.set(NEXT_MIDNIGHT)
    served = await client.generate([PROMPT], NoteSummary)
    await client.close()
    assert served.project == "projA"


async def test_invalid_key_is_disabled_and_another_key_used(
    make_gemini_emulator, client_factory, caplog
) -> None:
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1, KEY_A2])}))
    store = MemoryStateStore()
    keys = f"projA:{KEY_A1},projA:{KEY_A2}"
    client = client_factory(emu, keys, LITE, store)
    await client.start()
    emu.control(key_status={KEY_A1: "invalid"})
    with caplog.at_level(logging.DEBUG):  # every logger, the SDK's and aiohttp's too
        results = [await client.generate([PROMPT], NoteSummary) for _ in range(3)]
    await client.close()
    assert {g.key_fp for g in results} == {key_fingerprint(KEY_A2)}
    calls = generate_calls(emu)
    assert Counter((r.key_fp, r.status) for r in calls) == {
        (key_fingerprint(KEY_A1), 400): 1,
        (key_fingerprint(KEY_A2), 200): 3,
    }
    assert [d["key_fp"] for d in store.state["disabled_keys"]] == [key_fingerprint(KEY_A1)]
    assert key_fingerprint(KEY_A1) in caplog.text

    # A later run remembers the disabled key (and says so), without a request to it.
    emu.control(clear_log=True)
    later = client_factory(emu, keys, LITE, store)
    with caplog.at_level(logging.INFO, logger="pipelines.gemini"):
        await later.generate([PROMPT], NoteSummary)
    await later.close()
    assert {r.key_fp for r in emu.requests} == {key_fingerprint(KEY_A2)}
    assert "stays disabled" in caplog.text
    assert_no_secrets(caplog.text, store.state)


async def test_every_key_bad_is_unavailable(make_gemini_emulator, client_factory, caplog) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {
                "projA": project("projA", [{"key": KEY_A1, "status": "leaked"}]),
                "projB": project("projB", [{"key": KEY_B1, "status": "depleted"}]),
            }
        )
    )
    client = client_factory(emu, f"projA:{KEY_A1},projB:{KEY_B1}", LITE)
    with (
        caplog.at_level(logging.WARNING, logger="pipelines.gemini"),
        pytest.raises(EnrichmentUnavailable) as info,
    ):
        await client.start()
        await client.generate([PROMPT], NoteSummary)
    await client.close()
    assert info.value.reason == "no_usable_key"
    assert key_fingerprint(KEY_A1) in str(info.value) and key_fingerprint(KEY_B1) in str(info.value)
    assert_no_secrets(info.value, caplog.text)


async def test_503_burst_backs_off_then_next_model(
    make_gemini_emulator, client_factory, sleeps
) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {"projA": project("projA", [KEY_A1])},
            script=[{"model": LITE, "times": 10, "outcome": "503"}],
        )
    )
    client = client_factory(emu, f"projA:{KEY_A1}", f"{LITE},{FLASH}")
    result = await client.generate([PROMPT], NoteSummary)
    await client.close()
    assert result.model == FLASH
    assert [(r.model, r.status) for r in generate_calls(emu)] == [(LITE, 503)] * 3 + [(FLASH, 200)]
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 1.1 and 2.0 <= sleeps[1] <= 2.2
    assert client.stats["errors/server"] == 3 and client.stats["retries"] == 3


async def test_server_errors_everywhere_defer(make_gemini_emulator, client_factory) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {"projA": project("projA", [KEY_A1])}, script=[{"times": 20, "outcome": "500"}]
        )
    )
    client = client_factory(emu, f"projA:{KEY_A1}", f"{LITE},{FLASH}", GEMINI_SERVER_RETRIES="1")
    with pytest.raises(QuotaDeferred) as info:
        await client.generate([PROMPT], NoteSummary)
    await client.close()
    assert info.value.reason == "server_errors"
    assert info.value.next_attempt_at > datetime.fromtimestamp(emu.clock.time(), UTC)
    assert len(generate_calls(emu)) == 4


async def test_failed_precondition_stops_enrichment(make_gemini_emulator, client_factory) -> None:
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1])}))
    client = client_factory(emu, f"projA:{KEY_A1}", LITE)
    await client.start()
    emu.control(key_status={KEY_A1: "location"})
    with pytest.raises(EnrichmentUnavailable) as info:
        await client.generate([PROMPT], NoteSummary)
    assert info.value.reason == "failed_precondition"
    assert "User location is not supported" in str(info.value)
    # At start, models.list already answers the same.
    fresh = client_factory(emu, f"projA:{KEY_A1}", LITE)
    with pytest.raises(EnrichmentUnavailable):
        await fresh.start()
    await close_all(client, fresh)


async def test_limit_zero_drops_model_for_that_project(
    make_gemini_emulator, client_factory
) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {
                "projA": project("projA", [KEY_A1], **{LITE: {"rpd": 0}}),
                "projB": project("projB", [KEY_B1]),
            }
        )
    )
    store = MemoryStateStore()
    client = client_factory(emu, f"projA:{KEY_A1},projB:{KEY_B1}", LITE, store)
    results = [await client.generate([PROMPT], NoteSummary) for _ in range(3)]
    await client.close()
    assert {g.project for g in results} == {"projB"}
    assert Counter((r.project, r.status) for r in generate_calls(emu)) == {
        ("projA", 429): 1,
        ("projB", 200): 3,
    }
    assert store.state["dropped_for_project"][0]["project"] == "projA"
    assert client.stats["429/limit_zero"] == 1


@pytest.mark.parametrize(
    ("outcome", "error", "reason"),
    [
        ("safety", ContentBlocked, "safety"),
        ("recitation", ContentBlocked, "recitation"),
        ("prompt_blocked", ContentBlocked, "prompt_blocked"),
        ("max_tokens", TruncatedOutput, "max_tokens"),
        ("invalid_json", TruncatedOutput, "unparsable"),
    ],
)
async def test_content_outcomes(
    make_gemini_emulator, client_factory, outcome, error, reason
) -> None:
    emu = make_gemini_emulator(
        frozen_config({"projA": project("projA", [KEY_A1])}, script=[{"outcome": outcome}])
    )
    client = client_factory(emu, f"projA:{KEY_A1}", LITE)
    with pytest.raises(error) as info:
        await client.generate([PROMPT], NoteSummary)
    ok = await client.generate([PROMPT], NoteSummary)
    await client.close()
    assert info.value.reason == reason
    assert ok.finish_reason == "STOP"
    assert len(generate_calls(emu)) == 2  # not retried behind the caller's back


async def test_bad_image_is_bad_input_and_images_work(make_gemini_emulator, client_factory) -> None:
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1])}))
    client = client_factory(emu, f"projA:{KEY_A1}", LITE)
    good = types.Part.from_bytes(data=_png(), mime_type="image/png")
    bad = types.Part.from_bytes(data=b"\xff\xd8 this is not a jpeg", mime_type="image/jpeg")
    with pytest.raises(BadInput) as info:
        await client.generate([PROMPT, bad], NoteSummary)
    result = await client.generate([PROMPT, good, good], NoteSummary)
    await client.close()
    assert info.value.reason == "bad_image"
    assert [r.status for r in generate_calls(emu)] == [400, 200]
    assert generate_calls(emu)[1].images == 2
    assert result.usage["prompt_tokens"] == generate_calls(emu)[1].prompt_tokens > 2 * 258 - 1


async def test_thinking_settings_reach_the_server(make_gemini_emulator, client_factory) -> None:
    """2.5 Pro rejects budget 0 ("only works in thinking mode"): the client must not send it."""
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1])}))
    client = client_factory(emu, f"projA:{KEY_A1}", "gemini-2.5-pro,gemini-3-flash-preview")
    pro = await client.generate([PROMPT], NoteSummary)
    await client.close()
    assert pro.model == "gemini-2.5-pro"
    assert [r.status for r in generate_calls(emu)] == [200]


async def test_no_key_at_all() -> None:
    client = GeminiClient(GeminiSettings.from_env_like({}))
    with pytest.raises(EnrichmentUnavailable) as info:
        await client.start()
    assert info.value.reason == "no_api_key"


async def test_bounded_in_flight(make_gemini_emulator, client_factory) -> None:
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1])}, latency=0.05))
    client = client_factory(emu, f"projA:{KEY_A1}", LITE, GEMINI_MAX_IN_FLIGHT="2")
    await client.generate([PROMPT], NoteSummary)  # prove the pair first (one probe at a time)
    peak = 0
    current = 0
    original = client._sdk[key_fingerprint(KEY_A1)].aio.models.generate_content

    async def counting(**kwargs: Any) -> Any:
        nonlocal peak, current
        current += 1
        peak = max(peak, current)
        try:
            return await original(**kwargs)
        finally:
            current -= 1

    client._sdk[key_fingerprint(KEY_A1)].aio.models.generate_content = counting  # type: ignore[method-assign]
    await asyncio.gather(*(client.generate([PROMPT], NoteSummary) for _ in range(8)))
    await client.close()
    assert peak == 2


async def test_state_persists_through_mongo(
    make_gemini_emulator, client_factory, mongo_uri, mongo_db_name
) -> None:
    """The storage engineer's MongoQuotaStateStore carries the state between runs."""
    emu = make_gemini_emulator(
        frozen_config(
            {
                "projA": project("projA", [KEY_A1], **{LITE: {"rpd": 20, "used_today": 20}}),
                "projB": project("projB", [KEY_B1]),
            }
        )
    )
    keys = f"projA:{KEY_A1},projB:{KEY_B1}"
    mongo: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    try:
        first = client_factory(emu, keys, LITE, MongoQuotaStateStore(mongo[mongo_db_name]))
        await first.generate([PROMPT], NoteSummary)
        await first.close()
        emu.control(clock_advance=3600, clear_log=True)
        second = client_factory(emu, keys, LITE, MongoQuotaStateStore(mongo[mongo_db_name]))
        served = [await second.generate([PROMPT], NoteSummary) for _ in range(3)]
        await second.close()
        saved = await MongoQuotaStateStore(mongo[mongo_db_name]).load()
    finally:
        await mongo.close()
    assert {g.project for g in served} == {"projB"}
    assert Counter(r.project for r in generate_calls(emu)) == {"projB": 3}
    assert saved["exhausted"][0]["until"] == NEXT_MIDNIGHT.isoformat()
    assert_no_secrets(saved)
