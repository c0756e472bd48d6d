"""Packed requests (several notes per call), output caps, per-token latency, fast 429s.

Through the real SDK over TCP. Pictures are sandbox-tagged, so each image's OCR answer is
its ground truth and a result on the wrong note shows.
"""

from __future__ import annotations

import io
import time
from functools import cache

import pytest
from google.genai import types
from PIL import Image
from pydantic import BaseModel

from sandbox import dataset, imagetag
from tests.emulator.helpers import client

LITE = "gemini-2.5-flash-lite"
IDS = ("64b1a0c2000000001e00a1f1", "64b1a0c2000000001e00a1f2", "64b1a0c2000000001e00a1f3")


class Reading(BaseModel):
    index: int
    ocr_text: str
    caption: str


class NoteResult(BaseModel):
    note_id: str
    summary: str
    topics: list[str]
    images: list[Reading]


class Pack(BaseModel):
    notes: list[NoteResult]


@cache
def tagged_pictures(count: int) -> tuple[tuple[bytes, str], ...]:
    """``count`` JPEGs whose ground-truth texts are non-empty and all different."""
    found: list[tuple[bytes, str]] = []
    seen: set[str] = set()
    for index in range(200):
        for image in range(3):
            tag = dataset.make_tag(1, index, image)
            text = dataset.lookup_image_text(tag)
            if not text or text in seen:
                continue
            seen.add(text)
            img = imagetag.encode(Image.new("RGB", (540, 720), "white"), tag)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            found.append((buf.getvalue(), text))
            if len(found) == count:
                return tuple(found)
    raise AssertionError("not enough tagged pictures with text")


def packed_parts(images_per_note: tuple[int, ...]) -> tuple[list, dict[str, list[str]]]:
    """A packed prompt; returns the parts and each note's expected OCR texts."""
    pictures = iter(tagged_pictures(sum(images_per_note)))
    parts: list = ["Summarise each note. Each note starts with 'Note <id>:'."]
    expected: dict[str, list[str]] = {}
    for note_id, count in zip(IDS, images_per_note, strict=False):
        parts.append(
            f"Note {note_id}:\n标题：笔记 {note_id[-2:]}\n正文：第{note_id[-1]}篇。\n标签：测试"
        )
        expected[note_id] = []
        for i in range(count):
            data, text = next(pictures)
            parts += [f"Image {i}:", types.Part.from_bytes(data=data, mime_type="image/jpeg")]
            expected[note_id].append(text)
    return parts, expected


def pack_config(**extra) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=Pack, **extra
    )


def ocr_by_note(pack: Pack) -> dict[str, list[str]]:
    return {n.note_id: [r.ocr_text for r in n.images] for n in pack.notes}


def test_packed_answer_is_per_note_and_keeps_ground_truth(gemini_emulator):
    parts, expected = packed_parts((2, 1, 0))
    sdk = client(gemini_emulator)
    response = sdk.models.generate_content(model=LITE, contents=parts, config=pack_config())
    pack = response.parsed
    assert isinstance(pack, Pack)
    assert [n.note_id for n in pack.notes] == list(IDS)
    assert ocr_by_note(pack) == expected
    assert [[r.index for r in n.images] for n in pack.notes] == [[0, 1], [0], []]
    assert [n.summary for n in pack.notes] == [f"笔记 {i[-2:]} 第{i[-1]}篇。" for i in IDS]
    assert gemini_emulator.requests[-1].images == 3


class Insights(BaseModel):
    questions: list[str]
    agreements: list[str]
    disagreements: list[str]


class CommentedResult(BaseModel):
    note_id: str
    opening: str
    key_points: list[str]
    comment_insights: Insights


class CommentedPack(BaseModel):
    notes: list[CommentedResult]


def test_each_entry_answers_from_its_own_comments_and_echoes_its_opening(gemini_emulator):
    """Comment lines (``<n>. [评论·赞<likes>] <text>``) under a note are its comments only."""
    parts = [
        "Summarise each note.",
        "Note a1:\n标题：\n正文：第一篇 的正文，比较长的开头部分。\n- 要点一\n标签：测试\n读者评论：\n"
        "1. [评论·赞9] 用的是哪本书？\n2. [回复·赞3] 太有用了，收藏了\n3. [评论·赞1] 我不同意第二点",
        "Note b2:\n标题：第二篇\n正文：（无）\n标签：（无）\n读者评论：\n1. [评论·赞5] 确实是这样",
        "Note c3:\n标题：第三篇\n正文：没有评论的一篇？\n标签：测试",
    ]
    sdk = client(gemini_emulator)
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=CommentedPack
    )
    response = sdk.models.generate_content(model=LITE, contents=parts, config=config)
    a, b, c = response.parsed.notes
    assert a.comment_insights == Insights(
        questions=["用的是哪本书？"],
        agreements=["太有用了，收藏了"],
        disagreements=["我不同意第二点"],
    )
    assert b.comment_insights == Insights(questions=[], agreements=["确实是这样"], disagreements=[])
    assert c.comment_insights == Insights(questions=[], agreements=[], disagreements=[])
    assert a.key_points == ["要点一"]  # the comments are not the note's own text
    assert c.key_points == ["没有评论的一篇？"]  # nor is a question in the body a comment
    assert [n.opening for n in response.parsed.notes] == [
        "第一篇的正文，比较长的开头部分。",
        "确实是这样",
        "没有评论的一篇？",
    ]


@pytest.mark.parametrize("fault", ["pack_drop", "pack_duplicate", "pack_swap", "pack_unknown"])
def test_pack_faults_are_detectable(gemini_emulator, fault):
    parts, expected = packed_parts((2, 1, 1))
    gemini_emulator.control(script={"outcome": fault})
    sdk = client(gemini_emulator)
    response = sdk.models.generate_content(model=LITE, contents=parts, config=pack_config())
    ids = [n.note_id for n in response.parsed.notes]
    record = gemini_emulator.requests[-1]
    assert (record.status, record.error) == (200, fault)
    if fault == "pack_drop":
        assert len(ids) == 2 and set(ids) < set(IDS)
    elif fault == "pack_duplicate":
        assert len(ids) == 4 and set(ids) == set(IDS)
    elif fault == "pack_unknown":
        assert len(set(ids) - set(IDS)) == 1 and len(ids) == 3
    else:
        assert ids == list(IDS)  # the ids stay in place, the results moved
        got = ocr_by_note(response.parsed)
        wrong = [i for i in IDS if got[i] != expected[i]]
        assert len(wrong) == 2
        first, second = wrong
        assert (got[first], got[second]) == (expected[second], expected[first])
    for entry in response.parsed.notes:  # every OCR text is still some image's truth
        assert all(any(r.ocr_text in texts for texts in expected.values()) for r in entry.images)


def test_pack_fault_on_a_plain_request_changes_nothing(gemini_emulator):
    gemini_emulator.control(script={"outcome": "pack_swap"})
    sdk = client(gemini_emulator)
    response = sdk.models.generate_content(
        model=LITE,
        contents="标题：单篇\n正文：只有一篇。",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=NoteResult
        ),
    )
    assert response.parsed.summary == "单篇 只有一篇。"
    assert gemini_emulator.requests[-1].error is None


def test_packed_answer_cut_at_max_output_tokens(gemini_emulator):
    parts, _ = packed_parts((1, 1, 1))
    sdk = client(gemini_emulator)
    response = sdk.models.generate_content(
        model=LITE, contents=parts, config=pack_config(max_output_tokens=60)
    )
    assert response.parsed is None
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.text.lstrip().startswith('{\n  "notes": [')
    assert response.usage_metadata.candidates_token_count == 60


def test_output_token_limit_of_the_model_caps_any_request(make_gemini_emulator):
    emu = make_gemini_emulator(
        {"accept_any_key": True, "models": {LITE: {"output_token_limit": 25}}}
    )
    sdk = client(emu)
    assert sdk.models.get(model=LITE).output_token_limit == 25
    parts, _ = packed_parts((1, 1))
    cut = sdk.models.generate_content(
        model=LITE, contents=parts, config=pack_config(max_output_tokens=4000)
    )
    assert cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert cut.usage_metadata.candidates_token_count == 25
    assert emu.requests[-1].output_tokens == 25


def test_flash_lite_reports_its_real_output_limit(gemini_emulator):
    assert client(gemini_emulator).models.get(model=LITE).output_token_limit == 65_536


def test_latency_grows_with_output_tokens(make_gemini_emulator):
    emu = make_gemini_emulator(
        {"accept_any_key": True, "latency": {"fixed": 0.05, "per_output_token": 0.004}}
    )
    sdk = client(emu)
    parts, _ = packed_parts((2, 2, 2))
    sdk.models.generate_content(model=LITE, contents=parts, config=pack_config())
    sdk.models.generate_content(
        model=LITE, contents=parts, config=pack_config(max_output_tokens=10)
    )
    long, short = emu.requests
    assert long.output_tokens > 150 and short.output_tokens == 10
    assert long.latency_ms >= 1000 * (0.05 + 0.004 * long.output_tokens)
    assert short.latency_ms < long.latency_ms / 2


def test_a_429_comes_back_at_once_an_answer_after_the_latency(make_gemini_emulator):
    """The quota is checked at the door: a refused request does not wait for a model."""
    emu = make_gemini_emulator(
        {"accept_any_key": True, "default_limits": {"rpm": 1}, "latency": 0.8}
    )
    sdk = client(emu)
    started = time.monotonic()
    sdk.models.generate_content(model=LITE, contents="hi")
    answered = time.monotonic() - started
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        sdk.models.generate_content(model=LITE, contents="hi")
    refused = time.monotonic() - started
    assert getattr(info.value, "code", None) == 429
    assert answered >= 0.8 and refused < 0.4
