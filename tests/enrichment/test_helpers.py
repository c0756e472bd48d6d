"""Pure parts of the enrichment pipeline and of the `enrich` spider."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from itemadapter import ItemAdapter
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from crawler.core.items import NoteImage, NoteInteract, NoteItem, NoteUser, NoteVideo
from crawler.spiders.enrich import EnrichSpider, backlog_query, note_item_from_document
from pipelines.enrich_schema import ImageBatch, ImageReading, NoteEnrichment
from pipelines.enrichment import (
    EnrichSettings,
    ImageCountMismatch,
    ModelImage,
    NoteInput,
    align_images,
    build_parts,
    client_stats,
    enrichment_record,
    make_cache_key,
    merge_batches,
    model_input_hash,
    plan_batches,
    resolve_backend,
    split_cache_key,
)


def image(index: int, payload: bytes = b"x") -> ModelImage:
    return ModelImage(index=index, data=payload, sha256=hashlib.sha256(payload).hexdigest())


def reading(index: int, text: str = "") -> ImageReading:
    return ImageReading(index=index, ocr_text=text or f"text {index}", caption=f"c{index}")


@pytest.mark.parametrize(
    ("value", "configured", "expected"),
    [
        ("auto", True, "gemini"),
        ("auto", False, "local"),
        ("", False, "local"),
        ("GEMINI", False, "gemini"),
        ("local", True, "local"),
        ("off", True, "off"),
    ],
)
def test_resolve_backend(value: str, configured: bool, expected: str) -> None:
    assert resolve_backend(value, gemini_configured=configured) == expected


def test_resolve_backend_rejects_typos() -> None:
    with pytest.raises(ValueError, match="ENRICH_BACKEND"):
        resolve_backend("gemnii", gemini_configured=True)


def test_settings_are_read_once_into_a_dataclass() -> None:
    settings = Settings(
        {
            "GEMINI_API_KEYS": "p:k",
            "ENRICH_CONCURRENCY": "3",
            "ENRICH_MAX_IMAGES_PER_REQUEST": "4",
            "IMAGES_STORE": "/tmp/x",
            "FILES_STORE": "/tmp/y",
            "ENRICH_RETRY_AFTER": "60",
        }
    )
    cfg = EnrichSettings.from_settings(settings)
    assert (cfg.backend, cfg.concurrency, cfg.max_images_per_request) == ("gemini", 3, 4)
    assert cfg.files_store == "/tmp/x" and cfg.retry_after == timedelta(seconds=60)
    assert EnrichSettings.from_settings(Settings()).backend == "local"


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


def test_build_parts_labels_every_image_before_it() -> None:
    parts = build_parts("prompt", [image(3, b"\xff\xd8a"), image(5, b"\xff\xd8b")])
    assert [p.text for p in parts] == ["prompt", "Image 3:", None, "Image 5:", None]
    assert [p.inline_data.data for p in parts[2::2]] == [b"\xff\xd8a", b"\xff\xd8b"]
    assert {p.inline_data.mime_type for p in parts[2::2]} == {"image/jpeg"}


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


def test_enrichment_record_has_the_contract_shape() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    record = enrichment_record(
        status="done", backend="gemini", prompt_version="v", cache_key="k", attempts=1, now=now
    )
    assert set(record) == {
        "status",
        "backend",
        "model",
        "key_fp",
        "prompt_version",
        "cache_key",
        "attempts",
        "reason",
        "next_attempt_at",
        "updated_at",
        "result",
        "usage",
    }
    assert record["usage"] == {"requests": 0, "prompt_tokens": 0, "output_tokens": 0}


def test_client_stats_are_prefixed() -> None:
    stats = client_stats({"requests/gemini-2.5-flash": 3, "429/per_day": 1, "tokens_in": 10})
    assert stats == {
        "gemini/requests/gemini-2.5-flash": 3,
        "gemini/429/per_day": 1,
        "gemini/tokens_in": 10,
    }


def _item() -> NoteItem:
    return NoteItem(
        note_id="n1",
        url="http://x/explore/n1",
        xsec_token="tok",
        title="标题",
        desc="正文",
        type="normal",
        user=NoteUser(user_id="u1", nickname="nick"),
        tags=["a"],
        published_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated_at=None,
        ip_location="上海",
        interact=NoteInteract(liked=10, raw={"liked": "10+"}),
        images=[NoteImage(url="http://cdn/1", status="ok", path="a/b.jpg", sha256="00")],
        video=NoteVideo(url="http://v", candidates=["http://v"]),
        source="page",
        enrichment={"status": "deferred", "attempts": 1},
    )


def test_note_item_from_a_stored_document_round_trips(mongo_sync) -> None:
    original = _item()
    doc = {"_id": original.note_id, **ItemAdapter(original).asdict(), "first_seen_at": 1}
    mongo_sync.notes.insert_one(doc)
    stored = mongo_sync.notes.find_one({"_id": "n1"})  # BSON: naive datetimes come back
    assert note_item_from_document(stored) == original


def test_backlog_query_selects_what_is_due(mongo_sync) -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    past, future = now - timedelta(hours=1), now + timedelta(hours=1)
    notes = {
        "deferred_due": {"status": "deferred", "next_attempt_at": past},
        "deferred_later": {"status": "deferred", "next_attempt_at": future},
        "deferred_unset": {"status": "deferred", "next_attempt_at": None},
        "failed_retry": {"status": "failed", "next_attempt_at": past},
        "failed_final": {"status": "failed", "next_attempt_at": None},
        "done_gemini": {"status": "done", "backend": "gemini"},
        "done_local": {"status": "done", "backend": "local"},
        "off": {"status": "skipped", "reason": "disabled"},
        "empty": {"status": "skipped", "reason": "empty"},
        "never": None,
        "stale": {"status": "done", "backend": "gemini", "stale": True},
    }
    mongo_sync.notes.insert_many([{"_id": k, "enrichment": v} for k, v in notes.items()])

    def selected(include_local: bool) -> set[str]:
        query = backlog_query(now, include_local=include_local)
        return {d["_id"] for d in mongo_sync.notes.find(query)}

    due = {"deferred_due", "deferred_unset", "failed_retry", "off", "never", "stale"}
    assert selected(False) == due
    assert selected(True) == due | {"done_local"}


@pytest.mark.parametrize(
    ("settings", "include_local", "upgrade"),
    [
        ({"GEMINI_API_KEYS": "p:k"}, "1", True),
        ({"GEMINI_API_KEYS": "p:k"}, None, False),
        ({}, "1", False),  # no Gemini: nothing to upgrade with
        ({"GEMINI_API_KEYS": "p:k", "ENRICH_BACKEND": "local"}, "yes", False),
    ],
)
def test_enrich_spider_upgrades_local_results_only_with_gemini(
    settings: dict, include_local: str | None, upgrade: bool
) -> None:
    crawler = get_crawler(EnrichSpider, settings_dict=settings)
    spider = EnrichSpider.from_crawler(crawler, include_local=include_local, limit="5")
    assert (spider.upgrade_local, spider.limit) == (upgrade, 5)


def test_enrich_spider_rejects_a_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        EnrichSpider(limit="0")
