"""EnrichmentPipeline against the Gemini emulator (real SDK over HTTP) and the embedded Mongo."""

from __future__ import annotations

import asyncio

from pymongo import AsyncMongoClient

from crawler.core.enrichment_state import rank_of
from pipelines.enrichment import client_stats
from pipelines.enrichment.cache import journal_beside
from pipelines.mongo.claims import CLAIMS, claim
from tests.enrichment.support import (
    DATASET,
    generate_calls,
    note_item,
    pipeline_run,
    text_pictures,
)
from tests.factories import enrichment


async def test_one_request_per_note_and_none_on_a_rerun(
    settings, gemini_emulator, tmp_path
) -> None:
    specs = [DATASET.note(i) for i in range(20)]
    items = [note_item(spec, tmp_path) for spec in specs]
    async with pipeline_run(settings) as (pipeline, stats):
        await asyncio.gather(*(pipeline.process_item(item) for item in items))
    calls = generate_calls(gemini_emulator)
    # Sandbox notes have at most 9 images (a 3x3 grid): exactly one request each.
    assert max(len(s.images) for s in specs) == 9
    expected = len(specs)
    assert len(calls) == expected
    assert all(call.images <= 9 for call in calls)
    for spec, item in zip(specs, items, strict=True):
        enrichment = item.enrichment
        assert enrichment.status == "done", enrichment
        assert enrichment.backend == "gemini" and enrichment.key_fp.startswith("k:")
        assert enrichment.usage.requests == 1
        readings = enrichment.result["images"]
        assert [r["index"] for r in readings] == list(range(len(spec.images)))
        assert [r["ocr_text"] for r in readings] == [img.text for img in spec.images]
        assert enrichment.result["summary"]
    assert stats.get_value("enrich/done") == 20
    assert stats.get_value("gemini/tokens_in") > 0
    assert (
        sum(v for k, v in stats.get_stats().items() if k.startswith("gemini/requests/")) == expected
    )

    # A re-crawl of the same notes: fresh items (no enrichment) hit the cache, items that
    # carry their stored enrichment are left alone. Zero requests either way.
    gemini_emulator.reset_log()
    fresh = [note_item(spec, tmp_path) for spec in specs]
    async with pipeline_run(settings) as (pipeline, stats):
        for item in fresh + items:
            await pipeline.process_item(item)
    assert generate_calls(gemini_emulator) == []
    assert stats.get_value("enrich/cache_hits") == 40
    assert [i.enrichment.result for i in fresh] == [i.enrichment.result for i in items]
    assert all(i.enrichment.usage.requests == 0 for i in fresh)


async def test_a_note_with_twelve_images_takes_two_requests(
    settings, gemini_emulator, tmp_path
) -> None:
    pictures = text_pictures(12)
    item = note_item(DATASET.note(0), tmp_path, pictures)
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(item)
    calls = generate_calls(gemini_emulator)
    assert [call.images for call in calls] == [6, 6]
    result = item.enrichment.result
    assert item.enrichment.status == "done" and item.enrichment.usage.requests == 2
    assert [r["index"] for r in result["images"]] == list(range(12))
    assert [r["ocr_text"] for r in result["images"]] == [p.text for p in pictures]
    assert result["summary"] and result["language"] == "zh"


async def test_images_the_media_pipeline_failed_are_left_out(
    settings, gemini_emulator, tmp_path
) -> None:
    pictures = text_pictures(3)
    item = note_item(DATASET.note(0), tmp_path, pictures)
    failed = item.images[1]
    failed.status, failed.error, failed.path, failed.model_path = "failed", "http_404", None, None
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(item)
    assert [call.images for call in generate_calls(gemini_emulator)] == [2]
    readings = item.enrichment.result["images"]
    assert item.enrichment.status == "done"
    assert [(r["index"], r["ocr_text"]) for r in readings] == [
        (0, pictures[0].text),
        (2, pictures[2].text),
    ]


async def test_undecodable_image_is_dropped_after_one_bad_input_retry(
    settings, gemini_emulator, tmp_path
) -> None:
    pictures = text_pictures(3)
    item = note_item(DATASET.note(0), tmp_path, pictures)
    (tmp_path / item.images[1].model_path).write_bytes(b"\xff\xd8\xff\xe0 truncated garbage")
    async with pipeline_run(settings) as (pipeline, stats):
        await pipeline.process_item(item)
    calls = generate_calls(gemini_emulator)
    assert [(call.status, call.images) for call in calls] == [(400, 3), (200, 2)]
    assert item.enrichment.status == "done" and item.enrichment.usage.requests == 2
    assert [r["index"] for r in item.enrichment.result["images"]] == [0, 2]
    assert stats.get_value("enrich/images_dropped") == 1


async def test_bad_input_twice_fails_without_retry_later(
    settings, gemini_emulator, tmp_path
) -> None:
    gemini_emulator.control(script={"outcome": "bad_image", "times": 2})
    item = note_item(DATASET.note(0), tmp_path, text_pictures(2))
    async with pipeline_run(settings) as (pipeline, stats):
        await pipeline.process_item(item)
    assert len(generate_calls(gemini_emulator)) == 2
    enrichment = item.enrichment
    assert (enrichment.status, enrichment.next_attempt_at) == ("failed", None)
    assert enrichment.reason.startswith("bad_input")
    assert stats.get_value("enrich/failed/bad_input") == 1


async def test_blocked_content_fails_for_good(settings, gemini_emulator, tmp_path) -> None:
    gemini_emulator.control(script={"outcome": "safety", "times": 1})
    item = note_item(DATASET.note(0), tmp_path, text_pictures(1))
    async with pipeline_run(settings) as (pipeline, stats):
        await pipeline.process_item(item)
    assert len(generate_calls(gemini_emulator)) == 1
    assert item.enrichment.status == "failed"
    assert item.enrichment.reason.startswith("content_blocked: safety")
    assert item.enrichment.next_attempt_at is None
    assert stats.get_value("enrich/failed/content_blocked") == 1


async def test_truncated_output_retries_once_with_half_batches(
    settings, gemini_emulator, tmp_path
) -> None:
    gemini_emulator.control(script={"outcome": "max_tokens", "times": 1})
    pictures = text_pictures(4)
    item = note_item(DATASET.note(0), tmp_path, pictures)
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(item)
    assert [call.images for call in generate_calls(gemini_emulator)] == [4, 2, 2]
    assert item.enrichment.status == "done" and item.enrichment.usage.requests == 3
    assert [r["ocr_text"] for r in item.enrichment.result["images"]] == [p.text for p in pictures]


async def test_truncated_twice_is_a_retryable_failure(settings, gemini_emulator, tmp_path) -> None:
    gemini_emulator.control(script={"outcome": "max_tokens", "times": 2})
    item = note_item(DATASET.note(0), tmp_path, text_pictures(1))
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(item)
    enrichment = item.enrichment
    assert enrichment.status == "failed" and enrichment.reason.startswith("truncated")
    assert enrichment.next_attempt_at > enrichment.updated_at


async def test_unavailable_gemini_defers_every_note_and_says_so_once(
    settings, make_gemini_emulator, tmp_path, caplog
) -> None:
    emulator = make_gemini_emulator(
        {"projects": {"proj-a": {"keys": [{"key": "key-a1", "status": "location"}]}}}
    )
    settings = {**settings, "GEMINI_BASE_URL": emulator.base_url}
    items = [note_item(DATASET.note(i), tmp_path) for i in range(3)]
    async with pipeline_run(settings) as (pipeline, stats):
        for item in items:
            await pipeline.process_item(item)
    assert generate_calls(emulator) == []
    assert {i.enrichment.status for i in items} == {"deferred"}
    assert all(i.enrichment.reason.startswith("gemini_unavailable") for i in items)
    assert stats.get_value("enrich/deferred") == 3
    assert len([r for r in caplog.records if "Gemini is unavailable" in r.getMessage()]) == 1


async def test_a_note_whose_cache_lookup_gets_no_answer_is_deferred_unpaid(
    settings, gemini_emulator, tmp_path, unused_tcp_port
) -> None:
    """Issue 18, chaos run: a MongoDB restart outlasted the lookups' retries, the
    lookups counted as misses, and notes enriched runs before were paid for again.
    A lookup that gets no answer is no miss: the Gemini note is deferred (due again at
    once, no attempt spent) and no request is sent."""
    settings = {
        **settings,
        "MONGO_URI": f"mongodb://127.0.0.1:{unused_tcp_port}/",
        "MONGO_SERVER_SELECTION_TIMEOUT_MS": "200",
    }
    items = [note_item(DATASET.note(i), tmp_path) for i in (2, 3)]
    async with pipeline_run(settings) as (pipeline, stats):
        for item in items:
            await pipeline.process_item(item)
    assert generate_calls(gemini_emulator) == []
    assert [item.enrichment.status for item in items] == ["deferred", "deferred"]
    assert all(i.enrichment.reason.startswith("cache_unavailable: MongoDB error") for i in items)
    assert all(i.enrichment.next_attempt_at is None for i in items)
    assert [item.enrichment.attempts for item in items] == [0, 0]
    # each lookup is retried with the storage backoff first
    assert stats.get_value("enrich/cache_errors") >= 2
    assert stats.get_value("enrich/deferred_cache_unavailable") == 2


async def test_the_pipeline_writes_what_an_earlier_run_journaled(
    settings, mongo_sync, tmp_path
) -> None:
    """The journal of failed cache writes lies beside the storage spool
    (``MONGO_SPOOL_PATH``): the next run's pipeline writes it to ``enrich_cache`` when
    it opens (pipelines/enrichment/cache.py)."""
    journal = journal_beside(settings["MONGO_SPOOL_PATH"])
    entry = {"backend": "gemini", "model": "m", "result": {"summary": "paid before"}}
    journal.append([{"key": "note_zh.v2/gemini/journaled", "entry": entry}])
    async with pipeline_run(settings) as (_, stats):
        pass
    stored = mongo_sync["enrich_cache"].find_one({"_id": "note_zh.v2/gemini/journaled"})
    assert stored is not None and stored["result"] == {"summary": "paid before"}
    assert stats.get_value("enrich/cache_journal_loaded") == 1
    assert not journal.pending()


async def test_a_new_prompt_version_re_enriches_and_is_part_of_the_cache_key(
    settings, gemini_emulator, tmp_path
) -> None:
    item = note_item(DATASET.note(2), tmp_path)
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(item)
    assert item.enrichment.cache_key.startswith("note_zh.v2/gemini/")
    custom = tmp_path / "prompt.txt"
    custom.write_text(
        "# version: custom.v3\n[note]\n标题：{title}\n正文：{desc}\n{image_labels}\n"
        "[images]\n{image_labels}\n",
        "utf-8",
    )
    async with pipeline_run({**settings, "ENRICH_PROMPT": str(custom)}) as (pipeline, _):
        await pipeline.process_item(item)
    assert len(generate_calls(gemini_emulator)) == 2
    assert item.enrichment.prompt_version == "custom.v3"
    assert item.enrichment.cache_key.startswith("custom.v3/gemini/")
    assert item.enrichment.status == "done" and item.enrichment.attempts == 2


async def test_a_spent_request_budget_fails_the_note_for_a_later_retry(
    settings, gemini_emulator, tmp_path
) -> None:
    # 18 pictures: two batches of 9; the first answer is truncated and halved (5 + 4),
    # which spends the budget of 3 before the second batch.
    gemini_emulator.control(script={"outcome": "max_tokens", "times": 1})
    item = note_item(DATASET.note(0), tmp_path, text_pictures(18))
    async with pipeline_run(settings) as (pipeline, stats):
        await pipeline.process_item(item)
    assert [call.images for call in generate_calls(gemini_emulator)] == [9, 5, 4]
    state = item.enrichment
    assert state.status == "failed" and state.reason.startswith("request_budget")
    assert state.usage.requests == 3
    assert state.next_attempt_at > state.updated_at  # retried by the backlog later
    assert stats.get_value("enrich/failed/request_budget") == 1


async def test_halving_on_max_tokens_stays_bounded(settings, gemini_emulator, tmp_path) -> None:
    # Every answer truncated: the batch is halved once, a truncated half fails the note,
    # even with a generous request budget.
    gemini_emulator.control(script={"outcome": "max_tokens", "times": 50})
    item = note_item(DATASET.note(0), tmp_path, text_pictures(8))
    async with pipeline_run({**settings, "ENRICH_MAX_REQUESTS_PER_NOTE": 20}) as (pipeline, _):
        await pipeline.process_item(item)
    assert [call.images for call in generate_calls(gemini_emulator)] == [8, 4]
    assert item.enrichment.status == "failed" and item.enrichment.reason.startswith("truncated")
    assert item.enrichment.usage.requests == 2


def test_client_stats_are_prefixed() -> None:
    stats = client_stats({"requests/gemini-2.5-flash": 3, "429/per_day": 1, "tokens_in": 10})
    assert stats == {
        "gemini/requests/gemini-2.5-flash": 3,
        "gemini/429/per_day": 1,
        "gemini/tokens_in": 10,
    }


async def test_a_note_claimed_by_another_run_is_left_pending_whatever_it_carried(
    settings, gemini_emulator, mongo_uri, mongo_db_name, tmp_path
) -> None:
    """Issue 18, chaos run: ``crawl xhs`` met a deferred note that ``crawl enrich`` held
    the claim of, kept the day-old ``deferred`` it had read, and storage put it over the
    enrich run's newer ``failed`` (same rank: the later write wins), leaving the note
    deferred. The item now says ``pending`` (claimed_elsewhere), which ranks below
    every result the holder can store, and no request is sent."""
    item = note_item(DATASET.note(2), tmp_path)
    item.enrichment = enrichment("deferred", reason="daily_quota_exhausted", attempts=1)
    client = AsyncMongoClient(mongo_uri)
    try:
        granted = await claim(client[mongo_db_name], [item.note_id], "another-run", 60)
        async with pipeline_run(settings) as (pipeline, stats):
            await pipeline.process_item(item)
    finally:
        await client[mongo_db_name][CLAIMS].delete_many({})
        await client.close()
    assert granted == {item.note_id}
    assert generate_calls(gemini_emulator) == []
    assert item.enrichment.status == "pending" and item.enrichment.reason == "claimed_elsewhere"
    assert rank_of(item.enrichment) < rank_of(enrichment("failed", reason="truncated: x"))
    assert stats.get_value("enrich/claims/held_elsewhere") == 1
