"""Stored comments in the enrichment request of a note whose thread was not read in this
crawl (issue 14), and the notes due of a crawl's packing decision (issue 16): the real
Mongo-wire server, the storage pipeline, the enrich spider's claimed batches and the
Gemini emulator through the real SDK."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from crawler.core.items import CountText
from crawler.core.run_context import RunContext
from crawler.extensions.progress import publish_target
from crawler.spiders.enrich import EnrichSpider
from pipelines.enrichment import EnrichmentPipeline, EnrichSettings
from pipelines.enrichment.comments import COMMENT_TOKEN_BUDGET, COMMENTS_MARK, LINE_OVERHEAD
from pipelines.enrichment.stored_comments import MAX_STORED_COMMENTS, StoredComments
from pipelines.mongo import close_mongo, get_mongo
from pipelines.storage import MongoStoragePipeline
from tests.enrichment.support import DATASET, generate_calls, note_item, pipeline_run
from tests.factories import make_comment, project_crawler

MODEL = "gemini-2.5-flash-lite"


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {**settings, "ENRICH_PACK": "never"}


def thread(note_id: str, n: int, likes: int = 0) -> list[Any]:
    """Note ``note_id``'s thread (comment ids of factory note ``n``): a question, praise,
    a reply, a deleted and a hidden comment."""
    root = make_comment(
        n, 1, note_id=note_id, content="请问用的什么资料？", like_count=CountText(90 + likes, "x")
    )
    return [
        root,
        make_comment(
            n, 2, note_id=note_id, content="太有用了，收藏了", like_count=CountText(40, "x")
        ),
        make_comment(
            n,
            3,
            note_id=note_id,
            root=root.comment_id,
            content="同问",
            like_count=CountText(3, "3"),
        ),
        make_comment(
            n, 4, note_id=note_id, content="该评论已删除", status=1, like_count=CountText(999, "x")
        ),
        make_comment(
            n, 5, note_id=note_id, content="广告", status=3, like_count=CountText(500, "x")
        ),
    ]


async def store(settings: dict[str, Any], items: list[Any]) -> None:
    """Items through the real storage pipeline (notes and their comment units)."""
    crawler = project_crawler(settings)
    storage = MongoStoragePipeline.from_crawler(crawler)
    await storage.open_spider()
    try:
        for item in items:
            await storage.process_item(item)
    finally:
        await storage.close_spider()
        await close_mongo(crawler)


def deferred(hours_ago: float = 1.0) -> EnrichmentState:
    """A note deferred for quota whose resume time has passed."""
    past = datetime.now(UTC) - timedelta(hours=hours_ago)
    return EnrichmentState(
        status=EnrichmentStatus.DEFERRED,
        reason="daily_quota_exhausted",
        next_attempt_at=past,
        updated_at=past,
    )


async def test_stored_top_comments_shown_ones_most_liked_first(settings, tmp_path) -> None:
    spec = DATASET.note(11)
    item = note_item(spec, tmp_path)
    item.change = "new"
    item.comments = thread(spec.note_id, 1)
    other = note_item(DATASET.note(12), tmp_path)
    other.change = "new"
    other.comments = thread(other.note_id, 2, likes=5)
    await store(settings, [item, other])
    crawler = project_crawler(settings)
    try:
        db = (await get_mongo(crawler)).db
        lines = await StoredComments(db).top(spec.note_id)
        assert [line.text for line in lines] == ["请问用的什么资料？", "太有用了，收藏了", "同问"]
        assert [line.likes for line in lines] == [90, 40, 3] and lines[2].reply
        assert await StoredComments(db).top("0" * 24) == ()
        assert [line.text for line in await StoredComments(db, limit=1).top(spec.note_id)] == [
            "请问用的什么资料？"
        ]
    finally:
        await close_mongo(crawler)
    assert MAX_STORED_COMMENTS * (LINE_OVERHEAD + 1) <= COMMENT_TOKEN_BUDGET
    assert await StoredComments(None).top(spec.note_id) == ()


async def test_the_enrich_spider_sends_stored_comments_and_a_recrawl_costs_nothing(
    settings, gemini_emulator, tmp_path
) -> None:
    spec = DATASET.note(3)
    # What the note's request costs without comments (none stored yet).
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(note_item(spec, tmp_path))
    baseline = generate_calls(gemini_emulator)[-1].prompt_tokens
    gemini_emulator.reset_log()

    # An earlier crawl stored the note and its thread; its enrichment was deferred.
    crawled = note_item(spec, tmp_path)
    crawled.change = "new"
    crawled.comments = thread(spec.note_id, 1)
    crawled.enrichment = deferred()
    await store(settings, [crawled])

    # `scrapy crawl enrich`: the spider's claimed batches through the enrichment pipeline.
    crawler = project_crawler(settings, EnrichSpider)
    spider = EnrichSpider.from_crawler(crawler)
    crawler.spider = spider
    pipeline = EnrichmentPipeline(crawler, EnrichSettings.from_settings(crawler.settings))
    await pipeline.open_spider()
    enriched = []
    try:
        async for item in spider.start():
            assert item.from_backlog and item.comments is None
            enriched.append(await pipeline.process_item(item))
            spider.claims.done()
    finally:
        await pipeline.close_spider()
        await spider.claims.close()
        await close_mongo(crawler)
    assert RunContext.of(crawler).backlog_due == 1 and RunContext.of(crawler).backlog_claimed
    [item] = enriched
    state = item.enrichment
    assert (state.status, state.backend) == ("done", "gemini")
    assert state.cache_key.endswith(COMMENTS_MARK)
    insights = state.result["comment_insights"]
    assert any(insights.values()), insights
    [call] = generate_calls(gemini_emulator)
    assert call.prompt_tokens > baseline  # the comments went with the request
    assert crawler.stats.get_value("enrich/stored_comments/notes") == 1

    # The next crawls of the unchanged note: thread not read (unchanged count), or read
    # again with moved likes. Neither costs a request.
    for comments in (None, thread(spec.note_id, 1, likes=7)):
        again = note_item(spec, tmp_path)
        again.change = "unchanged"
        again.comments = comments
        again.enrichment = EnrichmentState.from_document(state.to_document())
        async with pipeline_run(settings) as (pipeline, stats):
            await pipeline.process_item(again)
        assert len(generate_calls(gemini_emulator)) == 1, comments
        assert again.enrichment.cache_key == state.cache_key
        assert stats.get_value("enrich/cache_hits") == 1


async def test_a_changed_note_with_an_unchanged_thread_gets_its_stored_comments(
    settings, gemini_emulator, tmp_path
) -> None:
    spec = DATASET.note(5)
    first = note_item(spec, tmp_path)
    first.change = "new"
    first.comments = thread(spec.note_id, 1)
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(first)
    await store(settings, [first])
    assert first.enrichment.cache_key.endswith(COMMENTS_MARK)
    with_thread = generate_calls(gemini_emulator)[-1].prompt_tokens

    # The text changed, the comment count did not: the spider skipped the thread.
    changed = note_item(spec, tmp_path)
    changed.desc = (changed.desc or "") + "\n更新：补充了一点。"
    changed.change = "changed"
    changed.enrichment = first.enrichment
    async with pipeline_run(settings) as (pipeline, stats):
        await pipeline.process_item(changed)
    calls = generate_calls(gemini_emulator)
    assert len(calls) == 2 and calls[-1].prompt_tokens > with_thread  # more text, same thread
    assert changed.enrichment.cache_key.endswith(COMMENTS_MARK)
    assert changed.enrichment.cache_key != first.enrichment.cache_key
    assert stats.get_value("enrich/stored_comments/notes") == 1


# -- the notes due of a crawl (issue 16) ------------------------------------------------


async def _crawl_two(settings: dict[str, Any], tmp_path, first: int, spider: Any) -> None:
    """Two notes of a crawl arriving together (a crawl path pipeline, the progress
    extension's target published)."""
    items = [note_item(DATASET.note(i), tmp_path) for i in (first, first + 1)]
    for item in items:
        item.change = "new"
    async with pipeline_run(settings, spider=spider) as (pipeline, _):
        publish_target(pipeline.crawler)
        await asyncio.gather(*(pipeline.process_item(item) for item in items))
    assert [item.enrichment.status for item in items] == ["done", "done"]


def _five_a_day(settings: dict[str, Any], make_gemini_emulator: Any) -> tuple[Any, dict]:
    """An emulator whose only model has 5 requests a day, and packing on ``auto``."""
    emulator = make_gemini_emulator(
        {"projects": {"proj-a": {"keys": ["key-a1"], "limits": {MODEL: {"rpd": 5}}}}}
    )
    return emulator, {
        **settings,
        "ENRICH_PACK": "auto",
        "ENRICH_PACK_WAIT": 0.5,
        "GEMINI_BASE_URL": emulator.base_url,
        "GEMINI_MODELS": MODEL,
        "GEMINI_LIMITS": f"{MODEL}:rpd=5",
    }


async def test_a_crawl_heading_for_more_notes_than_the_day_packs_from_the_first(
    settings, make_gemini_emulator, tmp_path
) -> None:
    emulator, tight = _five_a_day(settings, make_gemini_emulator)
    # Two notes in the pipeline and the day has 5 requests: no pack without the target.
    await _crawl_two(tight, tmp_path, 40, SimpleNamespace(max_notes=None, scheduled=set()))
    assert len(generate_calls(emulator)) == 2
    emulator.reset_log()
    # `-a max_notes=30`: 28 more notes to come than the 3 requests left: one request.
    await _crawl_two(tight, tmp_path, 42, SimpleNamespace(max_notes=30, scheduled=set()))
    assert len(generate_calls(emulator)) == 1


async def test_the_stored_backlog_counts_as_due_in_a_crawl(
    settings, make_gemini_emulator, tmp_path
) -> None:
    emulator, tight = _five_a_day(settings, make_gemini_emulator)
    backlog = [note_item(DATASET.note(i), tmp_path) for i in range(50, 58)]
    for item in backlog:
        item.change, item.enrichment = "new", deferred()
    await store(tight, backlog)
    # Nothing known of the crawl's target, but 8 stored notes due and 5 requests a day.
    await _crawl_two(tight, tmp_path, 60, SimpleNamespace(max_notes=None, scheduled=set()))
    assert len(generate_calls(emulator)) == 1


async def test_a_packed_request_carries_the_stored_comments_too(
    settings, gemini_emulator, tmp_path
) -> None:
    specs = [DATASET.note(i) for i in (20, 21, 22)]
    stored = [note_item(spec, tmp_path) for spec in specs]
    for n, item in enumerate(stored[:2], start=1):  # the third note has no comments
        item.change, item.comments, item.enrichment = "new", thread(item.note_id, n), deferred()
    stored[2].change, stored[2].enrichment = "new", deferred()
    await store(settings, stored)
    items = [note_item(spec, tmp_path) for spec in specs]
    for item, before in zip(items, stored, strict=True):
        item.change, item.enrichment = "changed", before.enrichment
    async with pipeline_run({**settings, "ENRICH_PACK": "always"}) as (pipeline, stats):
        await asyncio.gather(*(pipeline.process_item(item) for item in items))
    assert len(generate_calls(gemini_emulator)) == 1  # one pack of three
    assert [item.enrichment.status for item in items] == ["done"] * 3
    marks = [item.enrichment.cache_key.endswith(COMMENTS_MARK) for item in items]
    assert marks == [True, True, False]
    insights = [item.enrichment.result["comment_insights"] for item in items]
    assert any(insights[0].values()) and any(insights[1].values())
    assert not any(insights[2].values())
    assert stats.get_value("enrich/stored_comments/notes") == 2
