"""Answers through the real SDK: structured output, images, blocks, truncation, usage."""

from __future__ import annotations

import io

import pytest
from google.genai import errors, types
from PIL import Image
from pydantic import BaseModel

from tests.emulator.helpers import client, fixture_body, picture

NOTE = (
    "标题：周末咖啡店探店\n"
    "正文：今天去了一家新开的咖啡店。环境很安静！\n"
    "1. 拿铁很好喝\n"
    "2. 周末人多吗？\n"
    "建议早上去，不要下午去。\n"
    "标签：咖啡、探店"
)


class Reading(BaseModel):
    index: int
    ocr_text: str
    caption: str


class Enrichment(BaseModel):
    images: list[Reading]
    summary: str
    key_points: list[str]
    advice: list[str]
    topics: list[str]
    language: str


def json_config(**extra) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=Enrichment,
        thinking_config=types.ThinkingConfig(thinking_budget=0),
        **extra,
    )


def labelled_images(pictures: list[bytes]) -> list:
    parts: list = [NOTE]
    for i, data in enumerate(pictures):
        parts += [f"Image {i}:", types.Part.from_bytes(data=data, mime_type="image/png")]
    return parts


def test_parsed_pydantic_answer_has_one_entry_per_image(gemini_emulator):
    sdk = client(gemini_emulator)
    pictures = [picture(300, 200), picture(1000, 800, colour="red"), picture(768, 768)]
    response = sdk.models.generate_content(
        model="gemini-2.5-flash", contents=labelled_images(pictures), config=json_config()
    )
    parsed = response.parsed
    assert isinstance(parsed, Enrichment)
    assert [r.index for r in parsed.images] == [0, 1, 2]
    digests = [r.ocr_text for r in parsed.images]
    assert all(d.startswith("[emulator: no ground truth for image sha256:") for d in digests)
    assert digests[0] != digests[1]
    assert parsed.summary.startswith("周末咖啡店探店 今天去了一家新开的咖啡店。")
    assert parsed.key_points[:2] == ["拿铁很好喝", "周末人多吗？"]
    assert parsed.advice == ["建议早上去，不要下午去。"]
    assert parsed.topics == ["咖啡", "探店"]
    assert parsed.language == "zh"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP

    usage = response.usage_metadata
    # 258 (≤384 px) + 2×2 tiles + 1 tile; text is characters / 4.
    image_tokens = 258 + 4 * 258 + 258
    text_tokens = sum(-(-len(t) // 4) for t in [NOTE, "Image 0:", "Image 1:", "Image 2:"])
    assert usage.prompt_token_count == image_tokens + text_tokens
    assert usage.candidates_token_count == -(-len(response.text) // 4)
    assert usage.thoughts_token_count is None
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    record = gemini_emulator.requests[-1]
    assert (record.images, record.prompt_tokens, record.status) == (
        3,
        usage.prompt_token_count,
        200,
    )


def test_json_schema_dialect_and_property_order(gemini_emulator):
    sdk = client(gemini_emulator)
    schema = {
        "type": "object",
        "properties": {
            "language": {"type": "string", "enum": ["en", "zh"]},
            "pages": {"type": "array", "items": {"$ref": "#/$defs/Page"}},
            "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "count": {"type": "integer"},
        },
        "required": ["language", "pages"],
        "$defs": {
            "Page": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "image_index": {"type": "integer"}},
            }
        },
    }
    contents = [NOTE, types.Part.from_bytes(data=picture(64, 64), mime_type="image/png")] * 2
    response = sdk.models.generate_content(
        model="gemini-2.5-flash-lite",
        contents=contents,
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    answer = response.parsed
    assert list(answer) == ["language", "pages", "note", "count"]
    assert answer["language"] == "zh"
    assert [p["image_index"] for p in answer["pages"]] == [0, 1]
    assert isinstance(answer["note"], str) and answer["count"] == 2


def test_sandbox_picture_gives_its_ground_truth_text(gemini_emulator):
    from sandbox import dataset, imagetag

    tag = dataset.make_tag(1, 3, 0)
    expected = dataset.lookup_image_text(tag)
    assert expected is not None
    img = imagetag.encode(Image.new("RGB", (1080, 1440), "white"), tag)
    buf = io.BytesIO()
    img.resize((768, 1024)).save(buf, "JPEG", quality=85)
    sdk = client(gemini_emulator)
    response = sdk.models.generate_content(
        model="gemini-2.5-flash",
        contents=["Image 0:", types.Part.from_bytes(data=buf.getvalue(), mime_type="image/jpeg")],
        config=json_config(),
    )
    assert response.parsed.images[0].ocr_text == expected


@pytest.mark.parametrize(
    ("data", "mime"),
    [(b"\x89PNG\r\n\x1a\nnot really a png", "image/png"), (picture(40, 40)[:60], "image/png")],
)
def test_undecodable_image_gets_the_real_400(gemini_emulator, data, mime):
    sdk = client(gemini_emulator)
    with pytest.raises(errors.ClientError) as caught:
        sdk.models.generate_content(
            model="gemini-2.5-flash",
            contents=["Image 0:", types.Part.from_bytes(data=data, mime_type=mime)],
        )
    assert caught.value.code == 400
    assert caught.value.details == fixture_body("400_unable_to_process_image.json")
    assert gemini_emulator.requests[-1].error == "bad_image"


def test_heic_picture_decodes(gemini_emulator):
    from pillow_heif import register_heif_opener

    register_heif_opener()
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), "blue").save(buf, "HEIF")
    sdk = client(gemini_emulator)
    response = sdk.models.generate_content(
        model="gemini-2.5-flash",
        contents=[types.Part.from_bytes(data=buf.getvalue(), mime_type="image/heic")],
    )
    assert response.usage_metadata.prompt_tokens_details[1].token_count == 258


@pytest.mark.parametrize(
    ("outcome", "finish"),
    [
        ("safety", types.FinishReason.SAFETY),
        ("max_tokens", types.FinishReason.MAX_TOKENS),
        ("invalid_json", types.FinishReason.STOP),
        ("recitation", types.FinishReason.RECITATION),
    ],
)
def test_content_outcomes_leave_parsed_empty(gemini_emulator, outcome, finish):
    gemini_emulator.control(script={"outcome": outcome})
    sdk = client(gemini_emulator)
    response = sdk.models.generate_content(
        model="gemini-2.5-flash", contents=labelled_images([picture(50, 50)]), config=json_config()
    )
    assert response.parsed is None
    assert response.candidates[0].finish_reason == finish
    if outcome == "safety":
        assert response.text is None
        assert any(r.blocked for r in response.candidates[0].safety_ratings)
    elif outcome in ("max_tokens", "invalid_json"):
        assert response.text.startswith("{")
    # The next call is normal again.
    again = sdk.models.generate_content(
        model="gemini-2.5-flash", contents=labelled_images([picture(50, 50)]), config=json_config()
    )
    assert isinstance(again.parsed, Enrichment)
    assert [r.error for r in gemini_emulator.requests] == [outcome, None]


def test_blocked_prompt_and_empty_answers(gemini_emulator):
    sdk = client(gemini_emulator)
    gemini_emulator.control(
        script={"sequence": ["prompt_blocked", "empty_candidates", "empty_content"]}
    )
    blocked = sdk.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert blocked.candidates is None and blocked.text is None
    empty = sdk.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert empty.candidates is None and empty.text is None
    no_parts = sdk.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert no_parts.text is None
    assert no_parts.candidates[0].finish_reason == types.FinishReason.STOP


def test_thinking_counts_against_max_output_tokens(gemini_emulator):
    sdk = client(gemini_emulator)
    thinking = sdk.models.generate_content(model="gemini-2.5-flash", contents="hello " * 40)
    usage = thinking.usage_metadata
    assert usage.thoughts_token_count > 0
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )
    # A budget smaller than the thinking leaves nothing for the answer.
    starved = sdk.models.generate_content(
        model="gemini-2.5-flash",
        contents="hello " * 40,
        config=types.GenerateContentConfig(max_output_tokens=20),
    )
    assert starved.text is None
    assert starved.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert starved.usage_metadata.thoughts_token_count == 20
    # Without thinking, a small max_output_tokens cuts the JSON.
    cut = sdk.models.generate_content(
        model="gemini-2.5-flash",
        contents=labelled_images([picture(50, 50)]),
        config=json_config(max_output_tokens=30),
    )
    assert cut.parsed is None
    assert cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert len(cut.text) == 120


def test_pro_rejects_a_zero_thinking_budget(gemini_emulator):
    sdk = client(gemini_emulator)
    with pytest.raises(errors.ClientError) as caught:
        sdk.models.generate_content(model="gemini-2.5-pro", contents="hi", config=json_config())
    assert caught.value.code == 400
    assert "only works in thinking mode" in caught.value.message
    with pytest.raises(errors.ClientError) as small:
        sdk.models.generate_content(
            model="gemini-2.5-pro",
            contents="hi",
            config=types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(thinking_budget=64)
            ),
        )
    assert "between 128 and 32768" in small.value.message
    minimal = sdk.models.generate_content(
        model="gemini-2.5-pro",
        contents="hi",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=128)
        ),
    )
    assert 0 < minimal.usage_metadata.thoughts_token_count <= 128


def test_plain_text_and_count_tokens(gemini_emulator):
    sdk = client(gemini_emulator)
    response = sdk.models.generate_content(model="gemini-3-flash-preview", contents=NOTE)
    assert response.text.startswith("周末咖啡店探店")
    assert response.model_version == "gemini-3-flash-preview"
    assert response.response_id
    counted = sdk.models.count_tokens(
        model="gemini-2.5-flash",
        contents=[NOTE, types.Part.from_bytes(data=picture(2000, 100), mime_type="image/png")],
    )
    assert counted.total_tokens == -(-len(NOTE) // 4) + 3 * 258


def test_thinking_level_only_on_gemini_3(gemini_emulator):
    sdk = client(gemini_emulator)
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)
    )
    answer = sdk.models.generate_content(
        model="gemini-3-flash-preview", contents="hi", config=config
    )
    assert answer.usage_metadata.thoughts_token_count > 0
    with pytest.raises(errors.ClientError) as caught:
        sdk.models.generate_content(model="gemini-2.5-flash", contents="hi", config=config)
    assert caught.value.code == 400 and "Thinking level" in caught.value.message
