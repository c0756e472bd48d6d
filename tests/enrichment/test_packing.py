"""Packing: the pure decisions and checks, then packed requests through the real SDK
against the Gemini emulator (ground-truth OCR per image, so a result on the wrong note
shows) with the embedded Mongo for the cache and the shared day counts."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from crawler.core.items import CountText
from pipelines.enrichment.comments import COMMENTS_MARK, top_comments
from pipelines.enrichment.inputs import ModelImage, NoteInput
from pipelines.enrichment.packing import (
    OutputEstimate,
    PackMode,
    build_pack,
    check_pack,
    input_tokens,
    pack_size,
    pick_pack,
    should_pack,
)
from tests.enrichment.support import DATASET, generate_calls, note_item, pipeline_run
from tests.factories import make_comment

MODEL = "gemini-2.5-flash-lite"


def _note(title: str, images: int = 0) -> NoteInput:
    imgs = tuple(ModelImage(index=i, data=b"x", sha256=f"{title}{i}") for i in range(images))
    return NoteInput(title=title, desc=f"{title} body", tags=("t",), images=imgs)


def _entry(
    note_id: str, title: str, indices: list[int], opening: str | None = None
) -> dict[str, Any]:
    return {
        "note_id": note_id,
        "title": title,
        "opening": f"{title} body" if opening is None else opening,  # as _note's desc
        "summary": "s",
        "key_points": [],
        "advice": [],
        "topics": [],
        "language": "zh",
        "images": [{"index": i, "ocr_text": f"ocr {i}", "caption": "c"} for i in indices],
    }


# -- pure ------------------------------------------------------------------------------


def test_should_pack() -> None:
    assert should_pack(PackMode.AUTO, 20, 300)
    assert not should_pack(PackMode.AUTO, 20, 20)  # the day covers every note
    assert not should_pack(PackMode.AUTO, None, 300)  # the daily limit is unknown
    assert should_pack(PackMode.ALWAYS, None, 1)
    assert not should_pack(PackMode.NEVER, 0, 300)


def test_pack_size_follows_the_output_cap_and_learns() -> None:
    notes = [_note(f"n{i}", images=3) for i in range(20)]
    estimate = OutputEstimate(prior_per_unit=250, margin=1.5)
    # 4 units per note * 250 * 1.5 = 1500 (+1) tokens a note.
    assert (
        pack_size(notes, max_notes=12, output_limit=65_536, estimate=estimate, input_limit=10**6)
        == 12
    )
    assert (
        pack_size(notes, max_notes=12, output_limit=6_010, estimate=estimate, input_limit=10**6)
        == 4
    )
    assert (
        pack_size(notes, max_notes=12, output_limit=10, estimate=estimate, input_limit=10**6) == 1
    )
    # Image bytes: a request's inline data stays under 20 MB.
    assert (
        pack_size(
            notes,
            max_notes=12,
            output_limit=65_536,
            estimate=estimate,
            input_limit=10**6,
            max_bytes=7,
        )
        == 2
    )
    # Answers turn out four times longer than the prior: packs shrink.
    estimate.observe(notes[:10], 10 * 4 * 1000 * 2)
    assert (
        pack_size(notes, max_notes=12, output_limit=65_536, estimate=estimate, input_limit=10**6)
        < 12
    )


def test_labels_are_note_ids_and_image_numbers_are_pack_wide() -> None:
    pack = build_pack([("aa11", _note("A", 2)), ("b b", _note("B", 1)), ("aa11", _note("C"))])
    assert [m.label for m in pack.members] == ["aa11", "n2", "n3"]  # unsafe or repeated id
    assert [dict(m.images) for m in pack.members] == [{1: 0, 2: 1}, {3: 0}, {}]
    texts = [p.text for p in pack.parts if p.text]
    assert "Note aa11:" in texts[1] and texts[2:4] == ["Image 1:", "Image 2:"]


def test_check_pack_stores_only_what_belongs_to_each_note() -> None:
    notes = [
        ("a1", _note("A", 2)),
        ("b2", _note("B", 2)),
        ("c3", _note("C", 1)),
        ("d4", _note("D")),
    ]
    pack = build_pack(notes)
    answer = {
        "notes": [
            _entry("a1", "A", [3, 4]),  # B's images under A's id: swapped
            _entry("b2", "A", [1, 2]),  # A's images and title under B's id
            _entry("c3", "C", [5]),
            _entry("c3", "C", [5]),  # duplicated
            _entry("zz", "D", []),  # unknown id; d4 is missing
        ]
    }
    verdict = check_pack(pack, answer)
    assert verdict.results == {}
    assert verdict.retry == {
        "a1": "image_mismatch",
        "b2": "image_mismatch",
        "c3": "duplicated",
        "d4": "missing",
    }
    assert verdict.unknown == ["zz"]
    good = check_pack(pack, {"notes": [_entry("a1", "A", [2, 1]), _entry("d4", " D ", [])]})
    assert [r.index for r in good.results["a1"].images] == [0, 1]  # back to item positions
    assert set(good.results) == {"a1", "d4"}
    assert check_pack(pack, {"notes": [_entry("d4", "E", [])]}).retry["d4"] == "title_mismatch"
    assert set(check_pack(pack, {"oops": 1}).retry.values()) == {"unparsable"}


def _thread(i: int, *texts: str) -> list[Any]:
    """Note ``i``'s comments, the first most liked."""
    return [
        make_comment(i, k, content=text, like_count=CountText(100 - k, str(100 - k)))
        for k, text in enumerate(texts, 1)
    ]


def test_comments_go_under_their_note_and_count_in_both_estimates() -> None:
    bare = NoteInput(title="A", desc="正文", tags=(), images=())
    read = dataclasses.replace(bare, comments=top_comments(_thread(1, "用的什么书？", "很有用")))
    pack = build_pack([("a1", read), ("b2", bare)])
    texts = [p.text for p in pack.parts if p.text]
    assert "1. [评论·赞99] 用的什么书？" in texts[1] and "2. [评论·赞98] 很有用" in texts[1]
    assert "评论" not in texts[2]  # a note without comments gets no comments block
    assert input_tokens(read) > input_tokens(bare)
    assert OutputEstimate().tokens_for(read) > OutputEstimate().tokens_for(bare)


def test_notes_nothing_could_tell_apart_do_not_share_a_pack() -> None:
    """No images, same title (or none) and same opening: a swap would pass the check."""
    estimate = OutputEstimate()
    same = NoteInput(title="", desc="同一个开头的正文，然后不同 1", tags=(), images=())
    twin = NoteInput(title="", desc="同一个开头的正文，然后不同 2", tags=(), images=())
    other = NoteInput(title="", desc="另一篇笔记", tags=(), images=())
    blank = NoteInput(title="", desc="", tags=("t",), images=())
    pictured = dataclasses.replace(same, images=(ModelImage(index=0, data=b"x", sha256="s"),))
    notes = [same, twin, other, blank, blank, pictured]
    positions, full = pick_pack(
        notes, max_notes=12, output_limit=65_536, estimate=estimate, input_limit=10**6
    )
    assert positions == [0, 2, 3, 5] and not full  # images tell the last one apart
    positions, full = pick_pack(
        notes, max_notes=2, output_limit=65_536, estimate=estimate, input_limit=10**6
    )
    assert positions == [0, 2] and full


def test_a_swap_of_untitled_notes_without_images_is_caught_by_the_opening() -> None:
    first = NoteInput(title="", desc="第一篇的正文内容比较长", tags=(), images=())
    second = NoteInput(title="", desc="第二篇 的正文", tags=(), images=())
    pack = build_pack([("a1", first), ("b2", second)])
    answer = {
        "notes": [
            _entry("a1", "", [], opening="第二篇的正文"),
            _entry("b2", "", [], opening="第一篇的正文内容比较长"),
        ]
    }
    verdict = check_pack(pack, answer)
    assert verdict.results == {}
    assert verdict.retry == {"a1": "opening_mismatch", "b2": "opening_mismatch"}
    # Whitespace and a model copying more than asked are not mismatches.
    answer = {
        "notes": [
            _entry("a1", "", [], opening="第一篇的正文内容比较长，后面"),
            _entry("b2", "", [], opening="第二篇的正文"),
        ]
    }
    assert set(check_pack(pack, answer).results) == {"a1", "b2"}


# -- against the emulator ---------------------------------------------------------------


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    # Long enough for every note of a test to arrive before a pack goes part-full.
    return {**settings, "GEMINI_MODELS": MODEL, "ENRICH_PACK_WAIT": 2.0}


def _assert_ground_truth(specs: list[Any], items: list[Any]) -> None:
    for spec, item in zip(specs, items, strict=True):
        state = item.enrichment
        assert state.status == "done", (spec.note_id, state)
        readings = state.result["images"]
        assert [r["index"] for r in readings] == list(range(len(spec.images)))
        assert [r["ocr_text"] for r in readings] == [img.text for img in spec.images]


async def _run(settings: dict[str, Any], items: list[Any], backlog_due: int | None = None) -> Any:
    async with pipeline_run(settings, run={"backlog_due": backlog_due}) as (pipeline, stats):
        await asyncio.gather(*(pipeline.process_item(item) for item in items))
    return stats


async def test_always_packs_twelve_notes_a_request(settings, gemini_emulator, tmp_path) -> None:
    specs = [DATASET.note(i) for i in range(30)]
    items = [note_item(spec, tmp_path) for spec in specs]
    stats = await _run({**settings, "ENRICH_PACK": "always"}, items)
    calls = generate_calls(gemini_emulator)
    assert len(calls) == 3 and all(c.status == 200 for c in calls)  # 12 + 12 + 6
    _assert_ground_truth(specs, items)
    assert stats.get_value("enrich/pack/notes") == 30
    assert all(item.enrichment.usage.requests == 1 for item in items)
    assert sum(item.enrichment.usage.output_tokens for item in items) <= sum(
        c.output_tokens for c in calls
    )


@pytest.mark.parametrize("fault", ["pack_swap", "pack_drop", "pack_duplicate", "pack_unknown"])
async def test_a_faulty_pack_answer_never_lands_on_the_wrong_note(
    fault, settings, gemini_emulator, tmp_path
) -> None:
    gemini_emulator.control(script={"outcome": fault, "times": 2})
    specs = [DATASET.note(i) for i in range(40, 64)]
    items = [note_item(spec, tmp_path) for spec in specs]
    # All 24 notes arrive within the pack wait: the two scripted faults meet the two full
    # packs (a pack of one is a plain request, which the faults leave alone).
    stats = await _run({**settings, "ENRICH_PACK": "always"}, items)
    _assert_ground_truth(specs, items)
    calls = generate_calls(gemini_emulator)
    assert [c.error for c in calls].count(fault) == 2
    retried = sum(v for k, v in stats.get_stats().items() if k.startswith("enrich/pack/retried/"))
    assert retried >= 1
    # The notes come in two or three packs; each faulty answer's notes go again in one
    # later pack: a quarter of a request per note at most, against one without packing.
    assert len(calls) <= len(specs) / 4


@pytest.mark.parametrize("outcome", ["max_tokens", "bad_image", "safety"])
async def test_a_pack_failing_as_a_whole_is_bisected(
    outcome, settings, gemini_emulator, tmp_path
) -> None:
    """Cut at MAX_TOKENS, a 400 on one image, a blocked answer: split, not sent whole again."""
    gemini_emulator.control(script={"outcome": outcome, "times": 1})
    specs = [DATASET.note(i) for i in range(70, 82)]
    items = [note_item(spec, tmp_path) for spec in specs]
    stats = await _run({**settings, "ENRICH_PACK": "always"}, items)
    _assert_ground_truth(specs, items)
    assert len(generate_calls(gemini_emulator)) == 3  # 12, then 6 + 6
    assert stats.get_value("enrich/pack/bisected") == 1
    assert all(item.enrichment.usage.requests == 2 for item in items)


async def test_auto_packs_only_when_the_day_cannot_cover_the_backlog(
    settings, gemini_emulator, tmp_path
) -> None:
    specs = [DATASET.note(i) for i in range(90, 114)]
    # Daily limit unknown: one request per note, as before.
    items = [note_item(spec, tmp_path) for spec in specs[:6]]
    await _run(settings, items, backlog_due=6)
    assert len(generate_calls(gemini_emulator)) == 6
    gemini_emulator.reset_log()
    # 100 requests a day and 18 notes due: still one per note.
    limited = {**settings, "GEMINI_LIMITS": f"{MODEL}:rpd=100"}
    items = [note_item(spec, tmp_path) for spec in specs[6:12]]
    await _run(limited, items, backlog_due=6)
    assert len(generate_calls(gemini_emulator)) == 6
    gemini_emulator.reset_log()
    # 3 requests a day for 12 notes due: packed (another project: the 12 requests above
    # are in proj-a's shared day count).
    tight = {**settings, "GEMINI_API_KEYS": "proj-b:key-b1", "GEMINI_LIMITS": f"{MODEL}:rpd=3"}
    items = [note_item(spec, tmp_path) for spec in specs[12:]]
    await _run(tight, items, backlog_due=12)
    assert len(generate_calls(gemini_emulator)) == 1
    _assert_ground_truth(specs[12:], items)


async def test_notes_beyond_the_days_requests_are_deferred(
    make_gemini_emulator, settings, tmp_path
) -> None:
    emulator = make_gemini_emulator(
        {"projects": {"proj-a": {"keys": ["key-a1"], "limits": {MODEL: {"rpd": 2}}}}}
    )
    specs = [DATASET.note(i) for i in range(120, 150)]
    items = [note_item(spec, tmp_path) for spec in specs]
    tight = {**settings, "GEMINI_BASE_URL": emulator.base_url, "GEMINI_LIMITS": f"{MODEL}:rpd=2"}
    await _run(tight, items, backlog_due=30)
    statuses = [item.enrichment.status for item in items]
    assert statuses.count("done") == 24 and statuses.count("deferred") == 6
    deferred = [item.enrichment for item in items if item.enrichment.status == "deferred"]
    assert all(d.reason and d.next_attempt_at for d in deferred)
    assert [c.status for c in generate_calls(emulator)] == [200, 200]  # no 429 spent


async def test_pack_size_follows_the_models_output_token_limit(
    make_gemini_emulator, settings, tmp_path
) -> None:
    """models.list says 4,000 output tokens: packs hold what that fits, not 12 notes."""
    emulator = make_gemini_emulator(
        {
            "projects": {"proj-a": {"keys": ["key-a1"]}},
            "models": {MODEL: {"output_token_limit": 4000}},
        }
    )
    specs = [DATASET.note(i) for i in range(150, 162)]
    items = [note_item(spec, tmp_path) for spec in specs]
    small = {**settings, "GEMINI_BASE_URL": emulator.base_url, "ENRICH_PACK": "always"}
    await _run(small, items)
    calls = generate_calls(emulator)
    assert len(calls) >= 3
    assert all(c.finish_reason == "STOP" for c in calls)  # the estimate kept them under
    _assert_ground_truth(specs, items)


async def test_pack_size_follows_the_models_input_token_limit(
    make_gemini_emulator, settings, tmp_path
) -> None:
    """models.list says 8,000 input tokens (the emulator refuses more with a 400): packs
    hold what that fits, so no request is refused and none is bisected."""
    emulator = make_gemini_emulator(
        {
            "projects": {"proj-a": {"keys": ["key-a1"]}},
            "models": {MODEL: {"input_token_limit": 8000}},
        }
    )
    specs = [DATASET.note(i) for i in range(40, 100) if 1 <= len(DATASET.note(i).images) <= 3]
    specs = specs[:8]
    items = [note_item(spec, tmp_path) for spec in specs]
    small = {**settings, "GEMINI_BASE_URL": emulator.base_url, "ENRICH_PACK": "always"}
    await _run(small, items)
    calls = generate_calls(emulator)
    assert len(calls) >= 2 and all(c.status == 200 for c in calls), calls
    _assert_ground_truth(specs, items)


async def test_packed_notes_get_the_insights_of_their_own_comments(
    settings, gemini_emulator, tmp_path
) -> None:
    specs = [DATASET.note(i) for i in range(170, 173)]
    items = [note_item(spec, tmp_path) for spec in specs]
    items[0].comments = _thread(170, "这本书在哪里买的？", "太有用了，收藏了", "我不同意第二点")
    items[1].comments = _thread(171, "面试官问了几轮？", "确实是这样")
    # items[2]: its thread was not read in this crawl
    await _run({**settings, "ENRICH_PACK": "always"}, items)
    calls = generate_calls(gemini_emulator)
    assert len(calls) == 1 and calls[0].status == 200  # one packed request for the three
    _assert_ground_truth(specs, items)
    insights = [item.enrichment.result["comment_insights"] for item in items]
    assert insights[0] == {
        "questions": ["这本书在哪里买的？"],
        "agreements": ["太有用了，收藏了"],
        "disagreements": ["我不同意第二点"],
    }
    assert insights[1] == {
        "questions": ["面试官问了几轮？"],
        "agreements": ["确实是这样"],
        "disagreements": [],
    }
    assert insights[2] == {"questions": [], "agreements": [], "disagreements": []}
    marks = [item.enrichment.cache_key.endswith(COMMENTS_MARK) for item in items]
    assert marks == [True, True, False]  # made with the comments: not asked for again


async def test_swapped_untitled_notes_without_images_are_not_stored_on_each_other(
    settings, gemini_emulator, tmp_path
) -> None:
    gemini_emulator.control(script={"outcome": "pack_swap", "times": 1})
    items = []
    for k, spec in enumerate(DATASET.note(i) for i in range(180, 184)):
        item = note_item(spec, tmp_path, images=[])
        item.title = ""
        item.desc = f"第{k}篇没有标题的笔记。内容各不相同，编号 {k}。"
        items.append(item)
    stats = await _run({**settings, "ENRICH_PACK": "always"}, items)
    calls = generate_calls(gemini_emulator)
    assert calls[0].error == "pack_swap" and len(calls) >= 2
    assert stats.get_value("enrich/pack/retried/opening_mismatch") == 2
    for k, item in enumerate(items):  # each summary is its own note's first sentence
        assert item.enrichment.status == "done"
        assert item.enrichment.result["summary"].startswith(f"第{k}篇没有标题的笔记。")
