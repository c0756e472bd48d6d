"""Packing: the pure decisions and checks, then packed requests through the real SDK
against the Gemini emulator (ground-truth OCR per image, so a result on the wrong note
shows) with the embedded Mongo for the cache and the shared day counts."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from pipelines.enrichment.inputs import ModelImage, NoteInput
from pipelines.enrichment.packing import (
    OutputEstimate,
    PackMode,
    build_pack,
    check_pack,
    pack_size,
    should_pack,
)
from tests.enrichment.support import DATASET, generate_calls, note_item, pipeline_run

MODEL = "gemini-2.5-flash-lite"


def _note(title: str, images: int = 0) -> NoteInput:
    imgs = tuple(ModelImage(index=i, data=b"x", sha256=f"{title}{i}") for i in range(images))
    return NoteInput(title=title, desc=f"{title} body", tags=("t",), images=imgs)


def _entry(note_id: str, title: str, indices: list[int]) -> dict[str, Any]:
    return {
        "note_id": note_id,
        "title": title,
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
    assert pack_size(notes, max_notes=12, output_limit=65_536, estimate=estimate) == 12
    assert pack_size(notes, max_notes=12, output_limit=6_010, estimate=estimate) == 4
    assert pack_size(notes, max_notes=12, output_limit=10, estimate=estimate) == 1
    # Image bytes: a request's inline data stays under 20 MB.
    assert pack_size(notes, max_notes=12, output_limit=65_536, estimate=estimate, max_bytes=7) == 2
    # Answers turn out four times longer than the prior: packs shrink.
    estimate.observe(notes[:10], 10 * 4 * 1000 * 2)
    assert pack_size(notes, max_notes=12, output_limit=65_536, estimate=estimate) < 12


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


async def _run(settings: dict[str, Any], items: list[Any], spider: Any = None) -> Any:
    async with pipeline_run(settings, spider=spider) as (pipeline, stats):
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
    await _run(settings, items, spider=SimpleNamespace(backlog_due=6))
    assert len(generate_calls(gemini_emulator)) == 6
    gemini_emulator.reset_log()
    # 100 requests a day and 18 notes due: still one per note.
    limited = {**settings, "GEMINI_LIMITS": f"{MODEL}:rpd=100"}
    items = [note_item(spec, tmp_path) for spec in specs[6:12]]
    await _run(limited, items, spider=SimpleNamespace(backlog_due=6))
    assert len(generate_calls(gemini_emulator)) == 6
    gemini_emulator.reset_log()
    # 3 requests a day for 12 notes due: packed (another project: the 12 requests above
    # are in proj-a's shared day count).
    tight = {**settings, "GEMINI_API_KEYS": "proj-b:key-b1", "GEMINI_LIMITS": f"{MODEL}:rpd=3"}
    items = [note_item(spec, tmp_path) for spec in specs[12:]]
    await _run(tight, items, spider=SimpleNamespace(backlog_due=12))
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
    await _run(tight, items, spider=SimpleNamespace(backlog_due=30))
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
