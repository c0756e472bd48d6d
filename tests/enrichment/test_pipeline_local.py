"""The local backend through the pipeline, and upgrading its results with Gemini later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from sandbox.dataset import REFERENCE_INDEX, REFERENCE_TITLE
from tests.enrichment.support import DATASET, cer, generate_calls, note_item, pipeline_run


@pytest.fixture
def local_settings(mongo_uri: str, mongo_db_name: str, tmp_path: Path) -> dict[str, Any]:
    # ENRICH_BACKEND defaults to auto: no Gemini key configured → local.
    return {"MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name, "IMAGES_STORE": str(tmp_path)}


def test_cer_definition() -> None:
    assert cer("ab c", "abc") == 0
    assert cer("abd", "abc") == 1 / 3
    assert cer("", "abcd") == 1
    assert cer("x", "") == 1


async def test_reference_post_enriched_locally_then_served_from_the_cache(
    local_settings, tmp_path
) -> None:
    spec = DATASET.note(REFERENCE_INDEX)
    assert (spec.title, len(spec.images)) == (REFERENCE_TITLE, 3)
    item = note_item(spec, tmp_path)
    async with pipeline_run(local_settings) as (pipeline, stats):
        await pipeline.process_item(item)
    enrichment = item.enrichment
    assert (enrichment.status, enrichment.backend, enrichment.model) == (
        "done",
        "local",
        "rapidocr",
    )
    assert enrichment.prompt_version == "local.v1"
    assert stats.get_value("enrich/backend/local") == 1
    result = enrichment.result
    assert [r["index"] for r in result["images"]] == [0, 1, 2]
    # Real rapidocr on the media pipeline's downscaled JPEGs of the three question pictures.
    for reading, picture in zip(result["images"], spec.images, strict=True):
        assert cer(reading["ocr_text"], picture.text) < 0.05, (reading, picture.text)
    assert result["summary"].startswith(spec.title)
    # The interview questions are the numbered lines of the three pictures.
    assert len(result["key_points"]) == 18
    assert any("自注意力怎么计算" in point for point in result["key_points"])
    assert any(advice.startswith("整体感觉很重视基础") for advice in result["advice"])
    assert result["language"] == "zh" and result["topics"]

    again = note_item(spec, tmp_path)
    async with pipeline_run(local_settings) as (pipeline, stats):
        await pipeline.process_item(again)
    assert stats.get_value("enrich/cache_hits") == 1
    assert again.enrichment.result == result


async def test_local_results_are_kept_by_crawls_and_upgraded_by_the_enrich_spider(
    local_settings, gemini_emulator, tmp_path
) -> None:
    item = note_item(DATASET.note(2), tmp_path, images=[])  # text only: no OCR needed here
    async with pipeline_run(local_settings) as (pipeline, _):
        await pipeline.process_item(item)
    assert item.enrichment.backend == "local"
    gemini = {
        **local_settings,
        "GEMINI_API_KEYS": "proj-a:key-a1",
        "GEMINI_BASE_URL": gemini_emulator.base_url,
    }
    # A normal crawl with Gemini configured keeps the local result of unchanged content
    # (and clears a storage ``stale`` flag: the key matched the exact content)…
    item.enrichment.stale = True
    async with pipeline_run(gemini, run={"upgrade_local": False}) as (p, stats):
        await p.process_item(item)
    assert item.enrichment.backend == "local" and generate_calls(gemini_emulator) == []
    assert item.enrichment.stale is False
    assert stats.get_value("enrich/cache_hits") == 1
    # … `scrapy crawl enrich -a include_local=1` upgrades it.
    async with pipeline_run(gemini, run={"upgrade_local": True}) as (p, _):
        await p.process_item(item)
    assert (item.enrichment.status, item.enrichment.backend) == ("done", "gemini")
    assert len(generate_calls(gemini_emulator)) == 1
    # A Gemini result is never downgraded by a local run.
    async with pipeline_run(local_settings) as (pipeline, _):
        await pipeline.process_item(item)
    assert item.enrichment.backend == "gemini"


async def test_backend_off_marks_new_notes_skipped_and_keeps_existing_results(
    local_settings, tmp_path
) -> None:
    settings = {**local_settings, "ENRICH_BACKEND": "off"}
    fresh = note_item(DATASET.note(2), tmp_path)
    enriched = note_item(DATASET.note(3), tmp_path)
    enriched.enrichment = EnrichmentState(
        status=EnrichmentStatus.DONE, backend="gemini", result={"summary": "s"}
    )
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(fresh)
        await pipeline.process_item(enriched)
    assert (fresh.enrichment.status, fresh.enrichment.reason) == ("skipped", "disabled")
    assert enriched.enrichment.result == {"summary": "s"}
