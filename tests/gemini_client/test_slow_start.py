"""pipelines/gemini/slow_start.py: one request at a time to a (project, model) pair
until it has answered on this Pacific day. The rules on an injected clock, then what
they spare against the emulator over TCP through the real SDK (frozen emulator clock
that the client's sleeps advance)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from pipelines.gemini import QuotaDeferred
from pipelines.gemini.slow_start import SlowStart
from tests.emulator.helpers import client as sdk_client
from tests.factories import Clock
from tests.gemini_client.helpers import (
    KEY_A1,
    LITE,
    NEXT_MIDNIGHT,
    PROMPT,
    NoteSummary,
    frozen_config,
    generate_calls,
    project,
)

PAIR = ("projA", LITE)


async def test_an_unproven_pair_gets_a_probe_that_others_wait_for() -> None:
    slow = SlowStart()
    clock = Clock(NEXT_MIDNIGHT - timedelta(hours=2))
    probe = slow.begin(PAIR, clock().timestamp())
    assert probe is not None and slow.probe_of(PAIR) is probe
    waiter = asyncio.ensure_future(asyncio.shield(probe))
    await asyncio.sleep(0)
    assert not waiter.done()  # the others wait while the probe is out
    slow.end(PAIR, probe)
    await asyncio.wait_for(waiter, 1)
    assert slow.probe_of(PAIR) is None
    # Answered but not a success (a 429): still unproven, the next request probes again.
    assert slow.begin(PAIR, clock().timestamp()) is not None


async def test_a_success_proves_the_pair_for_the_rest_of_its_pacific_day() -> None:
    slow = SlowStart()
    clock = Clock(NEXT_MIDNIGHT - timedelta(hours=20))  # 04:00 Pacific
    slow.end(PAIR, slow.begin(PAIR, clock().timestamp()))
    slow.succeeded(PAIR, clock().timestamp())
    clock.advance(19 * 3600 + 59 * 60)  # 23:59 Pacific, the same quota day
    assert slow.begin(PAIR, clock().timestamp()) is None and slow.probe_of(PAIR) is None
    slow.end(PAIR, None)  # the end of a request that was no probe: nothing to do
    assert slow.begin(("projA", "gemini-2.5-flash"), clock().timestamp()) is not None
    assert slow.begin(("projB", LITE), clock().timestamp()) is not None
    clock.advance(120)  # past Pacific midnight (08:00 UTC): proven yesterday is not today
    assert clock() > NEXT_MIDNIGHT
    assert slow.begin(PAIR, clock().timestamp()) is not None


async def test_a_failure_after_success_means_probing_again() -> None:
    slow = SlowStart()
    now = datetime(2026, 11, 29, 20, 0, tzinfo=UTC).timestamp()
    slow.succeeded(PAIR, now)
    assert slow.begin(PAIR, now) is None
    slow.failed(PAIR)
    probe = slow.begin(PAIR, now + 1)
    assert probe is not None and slow.probe_of(PAIR) is probe
    slow.failed(PAIR)  # forgetting twice is harmless


async def test_fresh_client_on_an_exhausted_project_sends_one_request(
    make_gemini_emulator, client_factory
) -> None:
    emu = make_gemini_emulator(
        frozen_config(
            {"projA": project("projA", [KEY_A1], **{LITE: {"rpd": 20, "used_today": 20}})}
        )
    )
    client = client_factory(emu, f"projA:{KEY_A1}", LITE, GEMINI_MAX_IN_FLIGHT="8")
    outcomes = await asyncio.gather(
        *(client.generate([PROMPT], NoteSummary) for _ in range(8)), return_exceptions=True
    )
    assert all(isinstance(o, QuotaDeferred) for o in outcomes), outcomes
    assert [r.status for r in generate_calls(emu)] == [429]
    assert sorted(o.requests_spent for o in outcomes) == [0] * 7 + [1]


async def test_fresh_client_on_a_saturated_60_rpm_project_does_not_burst(
    make_gemini_emulator, client_factory
) -> None:
    """Another process used the minute's 60 requests: one 429, then the others follow."""
    emu = make_gemini_emulator(
        frozen_config({"projA": project("projA", [KEY_A1], **{LITE: {"rpm": 60}})})
    )
    other = sdk_client(emu, KEY_A1)
    for _ in range(60):
        await other.aio.models.generate_content(model=LITE, contents="hi")
    emu.reset_log()
    client = client_factory(emu, f"projA:{KEY_A1}", LITE, GEMINI_MAX_IN_FLIGHT="8")
    results = await asyncio.gather(*(client.generate([PROMPT], NoteSummary) for _ in range(8)))
    assert len(results) == 8
    calls = generate_calls(emu)
    assert calls[0].status == 429
    assert Counter(r.status for r in calls) == {429: 1, 200: 8}
    assert client.state.limiter("projA", LITE).limits.rpm == 60


async def test_slow_start_again_on_a_new_quota_day(make_gemini_emulator, client_factory) -> None:
    """Proven yesterday is not proven today: after Pacific midnight, one request first."""
    emu = make_gemini_emulator(
        frozen_config({"projA": project("projA", [KEY_A1], **{LITE: {"rpd": 20}})})
    )
    client = client_factory(emu, f"projA:{KEY_A1}", LITE, GEMINI_MAX_IN_FLIGHT="8")
    await client.generate([PROMPT], NoteSummary)
    emu.clock.set(NEXT_MIDNIGHT)
    emu.control(consume=[{"project": "projA", "model": LITE, "requests": 20}], clear_log=True)
    outcomes = await asyncio.gather(
        *(client.generate([PROMPT], NoteSummary) for _ in range(8)), return_exceptions=True
    )
    assert all(isinstance(o, QuotaDeferred) for o in outcomes), outcomes
    assert [r.status for r in generate_calls(emu)] == [429]
