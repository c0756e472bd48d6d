"""The pipeline records the requests the Gemini client really spent on a note.

``EnrichmentState.usage.requests`` comes from ``Generation.usage["requests"]`` and
``GeminiError.requests_spent`` (timeouts, empty answers and 429s count), against the
emulator through the real SDK.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from crawler.core.enrichment_state import EnrichmentStatus
from tests.enrichment.support import DATASET, generate_calls, note_item, pipeline_run, text_pictures


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        **settings,
        "ENRICH_PACK": "never",
        "GEMINI_MODELS": "gemini-2.5-flash-lite,gemini-2.5-flash",
    }


async def settle(gemini_emulator: Any, expected: int, timeout: float = 5.0) -> None:
    """Wait until ``expected`` generate calls are logged (a timed-out request is logged
    when the emulator answers it, after the client gave up)."""
    deadline = time.monotonic() + timeout
    while len(generate_calls(gemini_emulator)) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_a_timed_out_note_records_two_requests_and_is_deferred(
    settings, gemini_emulator, tmp_path
) -> None:
    item = note_item(DATASET.note(0), tmp_path, text_pictures(1))
    async with pipeline_run({**settings, "GEMINI_TIMEOUT": "0.3"}) as (pipeline, stats):
        gemini_emulator.control(latency=0.8)  # longer than the timeout and the retry's 0.6 s
        await pipeline.process_item(item)
    state = item.enrichment
    assert state.status is EnrichmentStatus.DEFERRED, state
    assert state.reason.startswith("timeout"), state.reason
    assert state.next_attempt_at > state.updated_at
    assert state.usage.requests == 2
    await settle(gemini_emulator, 2)
    calls = generate_calls(gemini_emulator)
    assert len(calls) == 2 and all(c.status == 200 for c in calls)  # both billed
    assert stats.get_value("gemini/requests") == 2


async def test_an_empty_answer_twice_fails_the_note_for_a_later_retry(
    settings, gemini_emulator, tmp_path
) -> None:
    gemini_emulator.control(script={"outcome": "empty_candidates", "times": 2})
    item = note_item(DATASET.note(0), tmp_path, text_pictures(1))
    async with pipeline_run(settings) as (pipeline, stats):
        await pipeline.process_item(item)
    state = item.enrichment
    assert state.status is EnrichmentStatus.FAILED, state
    assert state.reason.startswith("no_candidates"), state.reason
    assert state.next_attempt_at > state.updated_at  # retryable, not the catch-all error
    assert state.usage.requests == 2 and len(generate_calls(gemini_emulator)) == 2
    assert stats.get_value("enrich/failed/no_candidates") == 1
    assert not stats.get_value("enrich/failed/error")


async def test_an_empty_answer_once_is_retried_and_both_requests_count(
    settings, gemini_emulator, tmp_path
) -> None:
    gemini_emulator.control(script={"outcome": "empty_candidates", "times": 1})
    item = note_item(DATASET.note(0), tmp_path, text_pictures(1))
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(item)
    state = item.enrichment
    assert state.status is EnrichmentStatus.DONE, state
    assert state.usage.requests == 2 and len(generate_calls(gemini_emulator)) == 2


async def test_per_minute_429s_count_as_requests_sent(settings, gemini_emulator, tmp_path) -> None:
    gemini_emulator.control(script={"outcome": "429_minute", "times": 1, "retry_delay": 1})
    item = note_item(DATASET.note(0), tmp_path, text_pictures(1))
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(item)
    state = item.enrichment
    assert state.status is EnrichmentStatus.DONE, state
    assert [c.status for c in generate_calls(gemini_emulator)] == [429, 200]
    assert state.usage.requests == 2
