"""The incremental check against stored notes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crawler.core.enrichment_state import EnrichmentState
from crawler.core.items import NoteVideo
from pipelines.incremental import (
    IncrementalPipeline,
    classify_change,
    content_hash,
    media_identity,
)
from pipelines.mongo import MongoSettings, close_mongo
from tests.factories import T0, Clock, build_storage, make_note, project_crawler

from .test_pipeline import run_pipeline


def test_media_identity_ignores_signature_and_style():
    a = "http://sns-webpic-qc.xhscdn.com/202507161200/0a1b/notes_pre_post/1040g3abc!nd_dft_wlteh_webp_3"
    b = "https://sns-webpic-qc.xhscdn.com/202601010000/ffee/notes_pre_post/1040g3abc!nd_prv_wlteh_webp_3"
    assert media_identity(a) == media_identity(b) == "1040g3abc"
    assert media_identity(None) is None


def test_content_hash_is_stable_and_sensitive():
    base = content_hash(make_note(1))
    same = make_note(1, tags=list(reversed(make_note(1).tags)), xsec_token="other")
    same.interact.liked = 999
    for img in same.images:
        img.url = img.url.replace("202601050800", "202612312359")
    assert content_hash(same) == base
    assert content_hash(make_note(1, desc="改了")) != base
    assert content_hash(make_note(1, images=make_note(1).images[:1])) != base


def test_classify_change():
    item = make_note(1)
    h = content_hash(item)
    counts = {"liked": 1, "collected": 2, "comments": 3, "shares": 1}
    stored = {"content_hash": h, "updated_at": item.updated_at, "interact": dict(counts)}
    decide = classify_change
    assert decide(None, content_hash=h, updated_at=item.updated_at, counts=counts).change == "new"
    d = decide(stored, content_hash=h, updated_at=item.updated_at, counts=counts)
    assert (d.change, d.stats_changed) == ("unchanged", False)
    d = decide(stored, content_hash=h, updated_at=item.updated_at, counts={**counts, "liked": 5})
    assert (d.change, d.stats_changed) == ("unchanged", True)
    later = item.updated_at + timedelta(minutes=1)
    assert decide(stored, content_hash=h, updated_at=later, counts=counts).change == "changed"
    assert (
        decide(stored, content_hash="sha256:x", updated_at=None, counts=counts).change == "changed"
    )
    # Mongo gives back milliseconds and UTC; naive is UTC.
    naive = item.updated_at.replace(tzinfo=None, microsecond=0)
    stored_ms = {**stored, "updated_at": naive}
    assert (
        decide(
            stored_ms,
            content_hash=h,
            updated_at=item.updated_at.replace(microsecond=0),
            counts=counts,
        ).change
        == "unchanged"
    )


async def incremental(uri: str, db_name: str, items: list) -> IncrementalPipeline:
    crawler = project_crawler({"MONGO_URI": uri, "MONGO_DATABASE": db_name})
    pipe = IncrementalPipeline.from_crawler(crawler)
    await pipe.open_spider()
    try:
        for item in items:
            assert await pipe.process_item(item) is item
    finally:
        await close_mongo(crawler)
    return pipe


def _processed(i: int, **overrides):
    """A note as it leaves media and enrichment: files stored, enrichment done."""
    item = make_note(i, **overrides)
    for k, img in enumerate(item.images):
        img.path = f"full/ab/{i}-{k}.jpg"
        img.model_path = f"model/ab/{i}-{k}.jpg"
        img.sha256 = f"{i:02d}{k}" * 8
        img.mime = "image/jpeg"
        img.bytes = 1000 + k
        img.status = "ok"
    item.enrichment = EnrichmentState(status="done", backend="gemini", cache_key=f"c{i}")
    if item.video is not None:
        item.video.path, item.video.status, item.video.bytes = f"video/{i}.mp4", "ok", 99
    return item


async def test_incremental_pipeline(mongo_uri, mongo_db_name, tmp_path: Path):
    clock = Clock()
    video = NoteVideo(url="http://sns-video-qc.xhscdn.com/stream/1/110/259/01e5abc_259.mp4?sign=x")
    stored = [_processed(i) for i in range(4)] + [_processed(5, type="video", video=video)]
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s.jsonl", clock), stored)

    unchanged = make_note(0)
    stats_moved = make_note(1)
    stats_moved.interact.liked = 500
    changed = make_note(2, desc="作者改了正文")
    new = make_note(9)
    moved_video = NoteVideo(url=video.url.replace("sign=x", "sign=y"))
    video_note = make_note(5, type="video", video=moved_video)
    pipe = await incremental(
        mongo_uri, mongo_db_name, [unchanged, stats_moved, changed, new, video_note]
    )
    assert video_note.change == "unchanged"
    assert (moved_video.path, moved_video.status, moved_video.bytes) == ("video/5.mp4", "ok", 99)

    assert [x.change for x in (unchanged, stats_moved, changed, new)] == [
        "unchanged",
        "unchanged",
        "changed",
        "new",
    ]
    # Unchanged: files and enrichment reused; changed: files reused (same images), not enrichment.
    assert unchanged.enrichment == EnrichmentState(
        status="done", backend="gemini", cache_key="c0", content_hash=content_hash(unchanged)
    )
    assert [img.path for img in unchanged.images] == ["full/ab/0-0.jpg", "full/ab/0-1.jpg"]
    assert unchanged.images[1].bytes == 1001 and unchanged.images[0].status == "ok"
    assert stats_moved.enrichment is not None
    assert changed.enrichment is None and changed.images[0].status == "ok"
    assert new.enrichment is None and all(img.status == "pending" for img in new.images)
    stats = pipe.crawler.stats.get_stats()
    assert stats["notes/stats_changed"] == 1 and stats["incremental/media_reused"] == 9


async def test_incremental_when_database_is_down(tmp_path: Path):
    crawler = project_crawler(
        {"MONGO_URI": "mongodb://127.0.0.1:9/", "MONGO_SERVER_SELECTION_TIMEOUT_MS": 200}
    )
    clock = Clock(T0)
    pipe = IncrementalPipeline(
        crawler, MongoSettings.from_settings(crawler.settings), monotonic=clock.monotonic
    )
    await pipe.open_spider()
    try:
        items = [make_note(i) for i in range(3)]
        for item in items:
            await pipe.process_item(item)
    finally:
        await close_mongo(crawler)
    assert [i.change for i in items] == ["changed"] * 3
    stats = crawler.stats.get_stats()
    errors = {k: v for k, v in stats.items() if k.startswith("incremental/errors/")}
    assert sum(errors.values()) == 1  # then paused for the probe interval
    assert stats["incremental/skipped_db_down"] == 2
