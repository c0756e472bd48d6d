"""Quota exhausted → notes stored as deferred; after the quota day resets, `scrapy crawl
enrich` (a real subprocess) enriches the stored backlog."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from itemadapter import ItemAdapter

from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from crawler.core.items import NoteImage, NoteVideo
from crawler.core.run_context import RunContext
from crawler.spiders.enrich import EnrichSpider, note_item_from_document
from pipelines.mongo import close_mongo
from pipelines.storage import MongoStoragePipeline
from tests.enrichment.support import DATASET, generate_calls, note_item, pipeline_run
from tests.factories import make_note, project_crawler
from tests.fixtures.crawl import ROOT

PACIFIC = ZoneInfo("America/Los_Angeles")
MODELS = ("gemini-2.5-flash-lite", "gemini-2.5-flash")


def _spent_day_config(start: datetime) -> dict:
    limits = {model: {"rpd": 20, "used_today": 20} for model in MODELS}
    return {
        "clock": {"start": start.isoformat(), "frozen": True},
        "projects": {"proj-a": {"tier": "free", "keys": ["key-a1"], "limits": limits}},
    }


async def _store(items: list, settings: dict) -> None:
    crawler = project_crawler(settings)
    storage = MongoStoragePipeline.from_crawler(crawler)
    await storage.open_spider()
    for item in items:
        await storage.process_item(item)
    await storage.close_spider()
    await close_mongo(crawler)


async def test_deferred_until_pacific_midnight_then_enriched_by_the_enrich_spider(
    make_gemini_emulator,
    mongo_uri,
    mongo_db_name,
    mongo_sync,
    tmp_path: Path,
    scrapy_crawl,
    caplog,
) -> None:
    # The emulator's day (a past one, so the crawl subprocess on the real clock finds
    # the notes due) is spent for every model of the only project.
    day = (datetime.now(PACIFIC) - timedelta(days=2)).date()
    start = datetime(day.year, day.month, day.day, 22, 0, tzinfo=PACIFIC)
    midnight = datetime(day.year, day.month, day.day, tzinfo=PACIFIC) + timedelta(days=1)
    emulator = make_gemini_emulator(_spent_day_config(start))
    store = tmp_path / "images"
    settings = {
        "ENRICH_BACKEND": "gemini",
        "GEMINI_API_KEYS": "proj-a:key-a1",
        "GEMINI_MODELS": ",".join(MODELS),
        "GEMINI_BASE_URL": emulator.base_url,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": mongo_db_name,
        "IMAGES_STORE": str(store),
        "MONGO_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
    }
    specs = [DATASET.note(i) for i in (1, 3, 5, 7)]
    items = [note_item(spec, store) for spec in specs]
    for item in items:
        item.change = "new"
    async with pipeline_run(settings, clock=emulator.clock.now) as (pipeline, stats):
        for item in items:
            await pipeline.process_item(item)
    for item in items:
        assert item.enrichment.status == "deferred", item.enrichment
        assert item.enrichment.next_attempt_at == midnight.astimezone(UTC)
        assert item.enrichment.reason.startswith("daily_quota_exhausted")
    assert stats.get_value("enrich/deferred") == 4
    said = [r.getMessage() for r in caplog.records if "stored as deferred until" in r.getMessage()]
    assert len(said) == 1 and midnight.astimezone(UTC).isoformat() in said[0]
    assert stats.get_value("gemini/429/per_day") >= 1
    assert all(call.status == 429 for call in generate_calls(emulator))
    await _store(items, settings)
    stored = {d["_id"]: d["enrichment"]["status"] for d in mongo_sync.notes.find()}
    assert stored == {spec.note_id: "deferred" for spec in specs}

    emulator.control(clock_set=midnight + timedelta(minutes=1), clear_log=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "MONGO_"))}
    env.update(PYTHONPATH=str(ROOT), **settings)  # the fixture's IMAGES_STORE is `store` too
    result = scrapy_crawl("enrich", {}, env)
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 4, result.log[-3000:]
    docs = {d["_id"]: d for d in mongo_sync.notes.find()}
    for spec in specs:
        enrichment = docs[spec.note_id]["enrichment"]
        assert (enrichment["status"], enrichment["backend"]) == ("done", "gemini"), enrichment
        ocr = [r["ocr_text"] for r in enrichment["result"]["images"]]
        assert ocr == [img.text for img in spec.images]
    calls = generate_calls(emulator)
    assert [call.status for call in calls] == [200] * 4
    # The key only ever appears as its fingerprint.
    assert "key-a1" not in result.log and "key-a1" not in repr(docs)
    assert all(d["enrichment"]["key_fp"].startswith("k:") for d in docs.values())
    assert "enrich/done': 4" in result.log


def test_note_item_from_a_stored_document_round_trips(mongo_sync) -> None:
    original = make_note(
        1,
        images=[NoteImage(url="http://cdn/1", status="ok", path="a/b.jpg", sha256="00")],
        video=NoteVideo(url="http://v", candidates=["http://v"]),
        enrichment=EnrichmentState(status=EnrichmentStatus.DEFERRED, attempts=1),
    )
    doc = {"_id": original.note_id, **ItemAdapter(original).asdict(), "first_seen_at": 1}
    doc["enrichment"] = original.enrichment.to_document()
    mongo_sync.notes.insert_one(doc)
    stored = mongo_sync.notes.find_one({"_id": original.note_id})  # naive datetimes come back
    rebuilt = note_item_from_document(stored)
    assert rebuilt == replace(original, from_backlog=True)
    assert isinstance(rebuilt.enrichment, EnrichmentState)


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
    crawler = project_crawler(settings, EnrichSpider)
    spider = EnrichSpider.from_crawler(crawler, include_local=include_local, limit="5")
    assert (RunContext.of(crawler).upgrade_local, spider.limit) == (upgrade, 5)


def test_enrich_spider_rejects_a_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        EnrichSpider(limit="0")
