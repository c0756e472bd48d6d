"""PackQueue on its own: when a pack goes, what happens to the notes an answer did not
settle, and how a failing pack is split. A started GeminiClient (the real SDK) against
the emulator; the pipeline around the queue is tested in test_packing.py."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from pipelines.enrich_schema import NoteEnrichment
from pipelines.enrichment.gemini_runner import Conversation, GeminiRunner
from pipelines.enrichment.inputs import ModelImage, NoteInput
from pipelines.enrichment.pack_queue import PackQueue, PackSettings
from pipelines.enrichment.packing import PackMode
from pipelines.gemini import GeminiClient, GeminiSettings
from pipelines.prompts import load_prompt
from sandbox.dataset import NoteSpec
from tests.enrichment.support import DATASET, generate_calls, model_jpeg

MODEL = "gemini-2.5-flash-lite"


@pytest.fixture
async def client(gemini_emulator) -> AsyncIterator[GeminiClient]:
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": "proj-a:key-a1",
            "GEMINI_BASE_URL": gemini_emulator.base_url,
            "GEMINI_MODELS": MODEL,
        }
    )
    client = GeminiClient(settings)
    await client.start()
    yield client
    await client.close()


def queue(client: GeminiClient, *, wait: float, max_notes: int = 12, retries: int = 2) -> PackQueue:
    def single() -> GeminiRunner:
        return GeminiRunner(
            client, load_prompt(), max_per_request=9, max_requests=4, thinking=False
        )

    return PackQueue(
        client, PackSettings(PackMode.ALWAYS, max_notes, wait), single=single, retries=retries
    )


def note_of(spec: NoteSpec) -> NoteInput:
    """The sandbox note's first picture only (one image a note: a pack's image count in
    the emulator's log is its number of notes)."""
    data = model_jpeg(spec.images[0])
    image = ModelImage(index=0, data=data, sha256=hashlib.sha256(data).hexdigest())
    return NoteInput(title=spec.title, desc=spec.desc, tags=(), images=(image,))


def picture_notes(start: int, count: int) -> list[NoteSpec]:
    specs = [DATASET.note(i) for i in range(start, DATASET.size) if DATASET.note(i).images]
    return specs[:count]


def assert_own(spec: NoteSpec, result: NoteEnrichment) -> None:
    assert [(r.index, r.ocr_text) for r in result.images] == [(0, spec.images[0].text)]


async def test_a_pack_waits_a_bounded_time_then_a_pack_of_one_goes_alone(
    client, gemini_emulator
) -> None:
    """Notes arriving within the wait share one request; a late one is a pack of one,
    sent by the one-note runner (its schema, its prompt)."""
    packer = queue(client, wait=0.6)
    specs = picture_notes(0, 4)
    convs = [Conversation() for _ in specs]
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def arrive(k: int, after: float) -> tuple[NoteEnrichment, float]:
        await asyncio.sleep(after)
        result = await packer.enrich(specs[k].note_id, note_of(specs[k]), convs[k])
        return result, loop.time() - started

    done = await asyncio.gather(arrive(0, 0), arrive(1, 0.2), arrive(2, 0.4), arrive(3, 1.0))
    calls = generate_calls(gemini_emulator)
    assert [c.images for c in calls] == [3, 1]
    assert all(took >= 0.6 for _, took in done[:3])  # the wait, counted from the first
    for spec, (result, _) in zip(specs, done, strict=True):
        assert_own(spec, result)
    assert packer.stats.counts == {"requests": 1, "notes": 3, "alone": 1}
    assert [c.usage.requests for c in convs] == [1, 1, 1, 1]
    assert convs[3].model == MODEL and convs[3].usage.output_tokens > 0


async def test_a_full_pack_goes_without_waiting(client, gemini_emulator) -> None:
    packer = queue(client, wait=30.0, max_notes=2)
    specs = picture_notes(10, 2)
    results = await asyncio.wait_for(
        asyncio.gather(*(packer.enrich(s.note_id, note_of(s), Conversation()) for s in specs)),
        timeout=10,
    )
    assert [c.images for c in generate_calls(gemini_emulator)] == [2]
    for spec, result in zip(specs, results, strict=True):
        assert_own(spec, result)


async def test_a_dropped_note_goes_again_with_the_next_pack(client, gemini_emulator) -> None:
    """The entry left out of the first answer: the note waits at the head of the queue
    and goes with the notes that came meanwhile, not alone."""
    gemini_emulator.control(script={"outcome": "pack_drop", "times": 1})
    packer = queue(client, wait=0.3, max_notes=3)
    specs = picture_notes(20, 5)
    first = [packer.enrich(s.note_id, note_of(s), Conversation()) for s in specs[:3]]
    tasks = [asyncio.ensure_future(call) for call in first]
    while not generate_calls(gemini_emulator):
        await asyncio.sleep(0.02)
    later = [packer.enrich(s.note_id, note_of(s), Conversation()) for s in specs[3:]]
    results = await asyncio.gather(*tasks, *later)
    calls = generate_calls(gemini_emulator)
    assert [c.error for c in calls] == ["pack_drop", None]
    assert [c.images for c in calls] == [3, 3]  # two of the first pack, then 1 + 2
    assert packer.stats.counts["retried/missing"] == 1 and "alone" not in packer.stats.counts
    for spec, result in zip(specs, results, strict=True):
        assert_own(spec, result)


async def test_after_its_retries_a_note_goes_alone(client, gemini_emulator) -> None:
    """Every packed answer swapped: each note is tried in ``retries`` + 1 packs, then
    by itself (the one-note request the fault leaves alone)."""
    gemini_emulator.control(script={"outcome": "pack_swap", "times": 10})
    packer = queue(client, wait=0.2, retries=1)
    specs = picture_notes(30, 2)
    convs = [Conversation(), Conversation()]
    results = await asyncio.gather(
        *(packer.enrich(s.note_id, note_of(s), c) for s, c in zip(specs, convs, strict=True))
    )
    calls = generate_calls(gemini_emulator)
    assert [c.error for c in calls] == ["pack_swap", "pack_swap", None, None]
    assert packer.stats.counts["retried/image_mismatch"] == 4
    assert packer.stats.counts["alone"] == 2
    assert [c.usage.requests for c in convs] == [3, 3]
    for spec, result in zip(specs, results, strict=True):
        assert_own(spec, result)


async def test_bisection_goes_down_to_the_one_note_runner(client, gemini_emulator) -> None:
    """Cut at MAX_TOKENS, then one half cut again: that half is split into two notes,
    each through the one-note runner; every note counts the requests it was in."""
    gemini_emulator.control(script={"sequence": ["max_tokens", "max_tokens"]})
    packer = queue(client, wait=0.2)
    specs = picture_notes(40, 4)
    convs = [Conversation() for _ in specs]
    results = await asyncio.gather(
        *(packer.enrich(s.note_id, note_of(s), c) for s, c in zip(specs, convs, strict=True))
    )
    calls = generate_calls(gemini_emulator)
    assert sorted(c.images for c in calls) == [1, 1, 2, 2, 4]
    assert [c.finish_reason for c in calls][:2] == ["MAX_TOKENS", "MAX_TOKENS"]
    assert packer.stats.counts["bisected"] == 2 and packer.stats.counts["alone"] == 2
    assert sorted(c.usage.requests for c in convs) == [2, 2, 3, 3]
    for spec, result in zip(specs, results, strict=True):
        assert_own(spec, result)


async def test_notes_an_answer_could_not_tell_apart_go_in_different_packs(
    client, gemini_emulator
) -> None:
    """No title, no images, the same opening: the twin waits for the next pack."""
    texts = ["同一个开头的正文。第一篇", "同一个开头的正文。第二篇", "另一篇笔记的正文。"]
    notes = [NoteInput(title="", desc=text, tags=(), images=()) for text in texts]
    packer = queue(client, wait=0.2)
    results = await asyncio.gather(
        *(packer.enrich(f"n{k}", note, Conversation()) for k, note in enumerate(notes))
    )
    assert len(generate_calls(gemini_emulator)) == 2
    assert packer.stats.counts == {"requests": 1, "notes": 2, "alone": 1}
    for text, result in zip(texts, results, strict=True):  # each its own note's answer
        assert result.summary.replace(" ", "") == text
