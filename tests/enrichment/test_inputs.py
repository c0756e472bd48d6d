"""What the model sees of a note: images read through the media store, the input hash,
cache keys, batch planning and request parts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from itemadapter import ItemAdapter

from pipelines.enrichment import (
    ModelImage,
    NoteInput,
    build_parts,
    make_cache_key,
    model_input_hash,
    note_input,
    plan_batches,
    split_cache_key,
)
from pipelines.media import MediaStore
from tests.enrichment.support import store_image
from tests.factories import make_note, project_crawler


def image(index: int, payload: bytes = b"x") -> ModelImage:
    return ModelImage(index=index, data=payload, sha256=hashlib.sha256(payload).hexdigest())


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, [0]), (1, [1]), (8, [8]), (9, [5, 4]), (12, [6, 6]), (16, [8, 8]), (17, [6, 6, 5])],
)
def test_plan_batches_splits_evenly_at_most_eight(count: int, sizes: list[int]) -> None:
    batches = plan_batches([image(i) for i in range(count)], 8)
    assert [len(b) for b in batches] == sizes
    assert [img.index for b in batches for img in b] == list(range(count))


def test_model_input_hash_covers_text_and_every_image() -> None:
    base = NoteInput(title="t", desc="d", tags=("a",), images=(image(0, b"1"), image(1, b"2")))
    variants = [
        NoteInput(title="t2", desc="d", tags=("a",), images=base.images),
        NoteInput(title="t", desc="d2", tags=("a",), images=base.images),
        NoteInput(title="t", desc="d", tags=("b",), images=base.images),
        NoteInput(title="t", desc="d", tags=("a",), images=(image(0, b"1"), image(1, b"3"))),
        NoteInput(title="t", desc="d", tags=("a",), images=(image(0, b"1"),)),
    ]
    digest = model_input_hash(base)
    assert digest == model_input_hash(NoteInput(**vars(base)))
    assert all(model_input_hash(v) != digest for v in variants)


def test_cache_key_round_trip() -> None:
    key = make_cache_key("note_zh.v1", "gemini", "ab" * 16)
    assert key == f"note_zh.v1/gemini/{'ab' * 16}"
    assert split_cache_key(key) == ("note_zh.v1", "gemini", "ab" * 16)
    assert split_cache_key("garbage") is None
    assert split_cache_key(None) is None


def test_build_parts_labels_every_image_before_it() -> None:
    parts = build_parts("prompt", [image(3, b"\xff\xd8a"), image(5, b"\xff\xd8b")])
    assert [p.text for p in parts] == ["prompt", "Image 3:", None, "Image 5:", None]
    assert [p.inline_data.data for p in parts[2::2]] == [b"\xff\xd8a", b"\xff\xd8b"]
    assert {p.inline_data.mime_type for p in parts[2::2]} == {"image/jpeg"}


def test_note_input_reads_stored_images_through_the_media_store(tmp_path: Path) -> None:
    ok = store_image(tmp_path, b"\xff\xd8 zero")
    gone = store_image(tmp_path, b"\xff\xd8 one")
    (tmp_path / gone.model_path).unlink()
    failed = store_image(tmp_path, b"\xff\xd8 two", status="failed")
    outside = store_image(tmp_path, b"\xff\xd8 three", model_path="../../etc/passwd")
    note = make_note(1, title=" 标题 ", desc="正文", tags=["a"], images=[ok, gone, failed, outside])
    store = MediaStore.from_settings(project_crawler({"IMAGES_STORE": str(tmp_path)}).settings)
    result, unreadable = note_input(ItemAdapter(note), store, max_text_chars=20_000)
    assert (result.title, result.desc, result.tags) == ("标题", "正文", ("a",))
    assert [(img.index, img.data, img.sha256) for img in result.images] == [
        (0, b"\xff\xd8 zero", ok.sha256)
    ]
    assert unreadable == ["missing", "bad_path"]  # the failed image is not even tried
