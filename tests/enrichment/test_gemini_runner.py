"""GeminiRunner: the bounded request loop of one note, against the emulator through the
real google-genai SDK; and the pure answer checks it relies on."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from pipelines.enrich_schema import ImageBatch, ImageReading, NoteEnrichment
from pipelines.enrichment import (
    Conversation,
    EnrichFailure,
    GeminiRunner,
    ImageCountMismatch,
    ModelImage,
    NoteInput,
    align_images,
    merge_batches,
)
from pipelines.gemini import GeminiClient, GeminiSettings
from pipelines.prompts import load_prompt
from tests.enrichment.support import generate_calls, model_jpeg, text_pictures


def reading(index: int, text: str = "") -> ImageReading:
    return ImageReading(index=index, ocr_text=text or f"text {index}", caption=f"c{index}")


def test_align_images_reorders_renumbers_and_checks_the_count() -> None:
    assert [r.index for r in align_images([reading(5), reading(3)], [3, 5])] == [3, 5]
    renumbered = align_images([reading(0, "a"), reading(1, "b")], [6, 7])
    assert [(r.index, r.ocr_text) for r in renumbered] == [(6, "a"), (7, "b")]
    with pytest.raises(ImageCountMismatch):
        align_images([reading(0)], [0, 1])


def test_merge_batches_keeps_the_text_answer_and_all_images() -> None:
    first = NoteEnrichment(
        images=[reading(0), reading(1)],
        summary="s",
        key_points=["k"],
        advice=[],
        topics=["t"],
        language="zh",
    )
    merged = merge_batches(first, [ImageBatch(images=[reading(3), reading(2)])])
    assert [r.index for r in merged.images] == [0, 1, 2, 3]
    assert merged.summary == "s"


@pytest.fixture
async def client(gemini_emulator) -> AsyncIterator[GeminiClient]:
    settings = GeminiSettings.from_env_like(
        {"GEMINI_API_KEYS": "proj-a:key-a1", "GEMINI_BASE_URL": gemini_emulator.base_url}
    )
    client = GeminiClient(settings)
    await client.start()
    yield client
    await client.close()


def note_of(count: int) -> NoteInput:
    images = []
    for index, picture in enumerate(text_pictures(count)):
        data = model_jpeg(picture)
        images.append(ModelImage(index=index, data=data, sha256=hashlib.sha256(data).hexdigest()))
    return NoteInput(title="标题", desc="正文", tags=("a",), images=tuple(images))


def runner(client: GeminiClient, *, max_per_request: int, max_requests: int) -> GeminiRunner:
    return GeminiRunner(
        client,
        load_prompt(),
        max_per_request=max_per_request,
        max_requests=max_requests,
        thinking=False,
    )


async def test_batches_are_sent_in_order_and_merged(client, gemini_emulator) -> None:
    note, conv = note_of(7), Conversation()
    result = await runner(client, max_per_request=3, max_requests=3).enrich(note, conv)
    assert [call.images for call in generate_calls(gemini_emulator)] == [3, 2, 2]
    assert [r.index for r in result.images] == list(range(7))
    assert result.summary and conv.usage.requests == 3 and conv.usage.output_tokens > 0
    assert conv.key_fp.startswith("k:")


async def test_the_budget_stops_the_loop_before_the_next_request(client, gemini_emulator) -> None:
    note, conv = note_of(7), Conversation()
    with pytest.raises(EnrichFailure) as caught:
        await runner(client, max_per_request=3, max_requests=2).enrich(note, conv)
    assert caught.value.kind == "request_budget" and caught.value.retryable
    assert "1 batch(es) with 2 image(s) left" in caught.value.reason
    assert [call.images for call in generate_calls(gemini_emulator)] == [3, 2]
    assert conv.usage.requests == 2


async def test_a_truncated_text_batch_is_halved_once_text_first(client, gemini_emulator) -> None:
    gemini_emulator.control(script={"outcome": "max_tokens", "times": 1})
    note, conv = note_of(5), Conversation()
    result = await runner(client, max_per_request=9, max_requests=3).enrich(note, conv)
    assert [call.images for call in generate_calls(gemini_emulator)] == [5, 3, 2]
    assert [r.index for r in result.images] == list(range(5)) and result.summary
    assert conv.usage.requests == 3


async def test_blocked_content_stops_at_once(client, gemini_emulator) -> None:
    gemini_emulator.control(script={"outcome": "safety", "times": 1})
    conv = Conversation()
    with pytest.raises(EnrichFailure) as caught:
        await runner(client, max_per_request=3, max_requests=3).enrich(note_of(7), conv)
    assert caught.value.kind == "content_blocked" and not caught.value.retryable
    assert len(generate_calls(gemini_emulator)) == 1 and conv.usage.requests == 1
