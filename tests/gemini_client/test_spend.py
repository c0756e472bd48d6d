"""What the client spends: 429s at an unknown limit, timeouts, empty answers (slow start:
tests/gemini_client/test_slow_start.py).

Against the emulator over TCP through the real SDK; frozen emulator clock that the
client's sleeps advance, except where real time is the point (timeouts).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from pipelines.gemini import (
    ContentBlocked,
    EmptyAnswer,
    GeminiClient,
    GeminiSettings,
    QuotaDeferred,
    RequestTimedOut,
    SendingStopped,
)
from tests.gemini_client.helpers import (
    FLASH,
    KEY_A1,
    LITE,
    PROMPT,
    NoteSummary,
    frozen_config,
    generate_calls,
    project,
)


async def _settle(emu, expected: int, timeout: float = 5.0) -> None:
    """Wait (real time) until ``expected`` generate calls are in the emulator's log: a
    timed-out request is still being answered, and logged, after the client gave up."""
    deadline = time.monotonic() + timeout
    while len(generate_calls(emu)) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_unknown_low_rpm_costs_at_most_two_429s(make_gemini_emulator) -> None:
    """8 in flight, 20 calls, against an RPM of 10 the client is not told, answers arriving in
    lockstep: the first 429 comes back at once and teaches the limit before the next
    request leaves. The sleeps here are real (the spacing races real round trips), up
    to 0.1 s, and then move the frozen emulator clock on, so the minute passes at once."""
    emu = make_gemini_emulator(
        frozen_config({"projA": project("projA", [KEY_A1], **{LITE: {"rpm": 10}})}, latency=0.1)
    )
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": f"projA:{KEY_A1}",
            "GEMINI_MODELS": LITE,
            "GEMINI_BASE_URL": emu.base_url,
            "GEMINI_MAX_IN_FLIGHT": "8",
        }
    )

    async def sleep(seconds: float) -> None:
        """Sleep for real (at most 0.1 s), then bring the clock to the wake-up time
        unless another sleeper already took it further."""
        wake = emu.clock.time() + seconds
        await asyncio.sleep(min(seconds, 0.1))
        if emu.clock.time() < wake:
            emu.clock.advance(wake - emu.clock.time())

    client = GeminiClient(settings, clock=emu.clock.time, sleep=sleep)
    try:
        results = await asyncio.gather(*(client.generate([PROMPT], NoteSummary) for _ in range(20)))
    finally:
        await client.close()
    assert len(results) == 20
    statuses = Counter(r.status for r in generate_calls(emu))
    assert statuses[200] == 20 and 1 <= statuses[429] <= 2, " ".join(
        f"{r.status}@{r.time:%M:%S.%f}" for r in generate_calls(emu)
    )
    limiter = client.state.limiter("projA", LITE)
    assert limiter.limits.rpm == 10
    assert limiter.day_count == 20  # the refused ones were given back
    assert sum(g.usage["requests"] for g in results) == 20 + statuses[429]


async def test_timeout_is_spent_retried_once_longer_then_deferred(
    make_gemini_emulator, client_factory
) -> None:
    """Answers slower than the timeout: 2 requests per note reach the server, not 3 × 3."""
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1])}))
    client = client_factory(emu, f"projA:{KEY_A1}", f"{LITE},{FLASH}", GEMINI_TIMEOUT="0.2")
    await client.start()
    emu.control(latency=0.6)  # the retry waits 0.4 s: still too short
    outcomes = await asyncio.gather(
        *(client.generate([PROMPT], NoteSummary) for _ in range(3)), return_exceptions=True
    )
    await _settle(emu, 6)
    await asyncio.sleep(0.3)  # nothing more arrives
    assert all(isinstance(o, RequestTimedOut) for o in outcomes), outcomes
    assert {o.reason for o in outcomes} == {"timeout"}
    assert [o.requests_spent for o in outcomes] == [2, 2, 2]
    assert isinstance(outcomes[0], QuotaDeferred)  # callers defer it like a quota wait
    calls = generate_calls(emu)
    assert len(calls) == 6 and {r.model for r in calls} == {LITE}  # no fan-out
    assert all(r.status == 200 for r in calls)  # the server answered, and billed, each
    assert client.stats["timeouts"] == 6 and client.stats["requests"] == 6
    assert client.stats["deferred/timeout"] == 3


async def test_timeout_retry_with_the_longer_timeout_succeeds(
    make_gemini_emulator, client_factory
) -> None:
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1])}))
    client = client_factory(emu, f"projA:{KEY_A1}", f"{LITE},{FLASH}", GEMINI_TIMEOUT="0.3")
    await client.start()
    emu.control(latency=0.45)  # over 0.3 s, under the retry's 0.6 s
    result = await client.generate([PROMPT], NoteSummary)
    await _settle(emu, 2)
    assert result.model == LITE and result.usage["requests"] == 2
    assert [r.model for r in generate_calls(emu)] == [LITE, LITE]
    assert client.stats["timeouts"] == 1


async def test_empty_answer_is_retried_once(make_gemini_emulator, client_factory) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {"projA": project("projA", [KEY_A1])},
            script=[
                {"sequence": ["empty_candidates", "ok", "empty_candidates", "empty_candidates"]}
            ],
        )
    )
    client = client_factory(emu, f"projA:{KEY_A1}", LITE)
    recovered = await client.generate([PROMPT], NoteSummary)
    assert recovered.usage["requests"] == 2 and client.stats["retries"] == 1
    with pytest.raises(EmptyAnswer) as info:
        await client.generate([PROMPT], NoteSummary)
    assert not isinstance(info.value, ContentBlocked)
    assert info.value.reason == "no_candidates" and info.value.requests_spent == 2
    assert client.stats["empty_answers"] == 3
    assert len(generate_calls(emu)) == 4


async def test_requests_spent_on_a_deferral_after_server_errors(
    make_gemini_emulator, client_factory
) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {"projA": project("projA", [KEY_A1])}, script=[{"times": 20, "outcome": "500"}]
        )
    )
    client = client_factory(emu, f"projA:{KEY_A1}", f"{LITE},{FLASH}", GEMINI_SERVER_RETRIES="1")
    with pytest.raises(QuotaDeferred) as info:
        await client.generate([PROMPT], NoteSummary)
    assert info.value.reason == "server_errors"
    assert info.value.requests_spent == len(generate_calls(emu)) == 4


async def test_calls_waiting_inside_the_client_send_nothing_once_stopping(
    make_gemini_emulator,
) -> None:
    """Issue 18 (the chaos run's forced stop): a call waiting inside the client for its
    turn (here: one request in flight at a time) when the run is asked to stop sends no
    request; it raises ``SendingStopped`` with nothing spent. The one already sent
    finishes."""
    emu = make_gemini_emulator(frozen_config({"projA": project("projA", [KEY_A1])}))
    emu.control(latency=0.5)
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": f"projA:{KEY_A1}",
            "GEMINI_MODELS": LITE,
            "GEMINI_BASE_URL": emu.base_url,
            "GEMINI_MAX_IN_FLIGHT": "1",
            "GEMINI_LIMITS": f"{LITE}:rpm=4000,rpd=100000",
        }
    )
    stop = asyncio.Event()
    client = GeminiClient(settings, clock=emu.clock.time, stopping=stop.is_set)
    try:
        calls = [asyncio.ensure_future(client.generate([PROMPT], NoteSummary)) for _ in range(5)]
        while client.stats["requests"] < 1:  # the first request is out, the others wait
            await asyncio.sleep(0.01)
        stop.set()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await client.close()
    assert len(generate_calls(emu)) == 1
    stopped = [o for o in outcomes if isinstance(o, SendingStopped)]
    assert len(stopped) == 4 and {o.requests_spent for o in stopped} == {0}, outcomes
    assert client.stats["stopped_before_send"] == 4
