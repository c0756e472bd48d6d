"""Creator profiles in storage: the user unit, `users` upserts, `user_stats` rows, indexes,
spool replays (an older profile never overwrites newer counts), on the embedded server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pymongo import AsyncMongoClient

from crawler.core.items import CountText
from crawler.parsing.state import extract_initial_state
from crawler.parsing.users import profile_warnings, user_from_state
from pipelines.enrichment import EnrichmentPipeline
from pipelines.incremental import IncrementalPipeline
from pipelines.media import NoteMediaPipeline
from pipelines.mongo import MongoSettings
from pipelines.storage import Spool, prepare_unit
from pipelines.storage.kinds import kind_for_item, kind_of
from pipelines.storage.schema import collection_kind
from pipelines.storage.users import prepare_user_unit
from tests.factories import T0, Clock, build_storage, make_note, make_profile, project_crawler
from tests.parsing.samples import PROFILE_09, real_bytes

from .test_pipeline import run_pipeline


def _unit(item, **kw):
    return prepare_user_unit(item, now=T0, run_id="run-a", max_chars=kw.get("max_chars", 1000))


def test_user_unit_flattens_counts_and_keeps_the_raw_text():
    item = make_profile(3, fans=12345)
    unit = _unit(item)
    assert kind_for_item(item).name == "user" and kind_of(unit).collection == "users"
    fields = unit["fields"]
    assert (fields["fans"], fields["fans_raw"]) == (12345, "1.2万")
    assert (fields["follows"], fields["likes_and_collects_raw"]) == (20, "5003")
    assert fields["tags"] == [
        {"kind": "location", "name": "上海", "icon": None},
        {"kind": "profession", "name": "设计师", "icon": None},
    ]
    assert "interactions" not in fields and "user_id" not in fields
    assert unit["stats"] == {
        "user_id": "u3",
        "crawled_at": T0,
        "crawl_run_id": "run-a",
        "fans": 12345,
        "follows": 20,
        "likes_and_collects": 5003,
        "notes_seen": 3,
    }
    # A count that is no number ("10万+" is a lower bound, "赞" none) keeps its text.
    item.interactions.fans = CountText(None, "赞")
    assert _unit(item)["fields"]["fans"] is None and _unit(item)["fields"]["fans_raw"] == "赞"


def test_user_unit_names_cut_fields():
    item = make_profile(1, desc="长" * 50, truncated=["tags"])
    unit = _unit(item, max_chars=10)
    # The document's truncated_fields name every cut, the parser's (tags) and storage's.
    assert unit["truncated"] == ["desc", "tags"] and unit["fields"]["truncated"] == ["tags"]


async def test_profiles_upserted_with_one_row_per_crawl(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
):
    clock = Clock()
    first = [make_profile(i) for i in range(3)]
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s", clock), first)
    later = T0 + timedelta(days=1)
    grown = [make_profile(i, fans=1100 + i, fetched_at=later, notes_seen=4) for i in range(2)]
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s", clock), grown)

    assert mongo_sync.users.count_documents({}) == 3
    u0 = mongo_sync.users.find_one({"_id": "u0"})
    assert (u0["fans"], u0["fans_raw"], u0["notes_seen"]) == (1100, "1100", 4)
    assert u0["first_seen_at"] == T0.replace(tzinfo=None) and u0[
        "last_crawled_at"
    ] == later.replace(tzinfo=None)
    assert u0["user_id"] == "u0" and u0["crawl_run_id"] == "run-test"
    assert u0["truncated"] == [] and u0["truncated_fields"] == []
    assert mongo_sync.users.find_one({"_id": "u2"})["fans"] == 1002
    rows = list(mongo_sync.user_stats.find({"user_id": "u0"}).sort("crawled_at", 1))
    assert [r["fans"] for r in rows] == [1000, 1100]
    assert mongo_sync.user_stats.count_documents({"user_id": "u2"}) == 1
    top = [u["_id"] for u in mongo_sync.users.find({}).sort("fans", -1)]
    assert top == ["u1", "u0", "u2"]
    assert {"fans", "last_crawled_at"} <= set(mongo_sync.users.index_information())
    assert "user_id_crawled_at" in mongo_sync.user_stats.index_information()


async def test_replayed_older_profile_keeps_newer_counts(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
):
    spool_path = tmp_path / "spool.jsonl"
    newer = make_profile(5, fans=2000, fetched_at=T0 + timedelta(hours=5))
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, spool_path), [newer])
    # A unit spooled during an outage earlier that day, replayed at the next start.
    older = make_profile(5, fans=1500, fetched_at=T0)
    Spool(spool_path).append([_unit(older)])
    storage = build_storage(mongo_uri, mongo_db_name, spool_path)
    await run_pipeline(storage, [])

    doc = mongo_sync.users.find_one({"_id": "u5"})
    assert doc["fans"] == 2000 and doc["last_crawled_at"] == newer.fetched_at.replace(tzinfo=None)
    assert doc["first_seen_at"] == T0.replace(tzinfo=None)  # the earlier sighting counts
    rows = sorted(r["fans"] for r in mongo_sync.user_stats.find({"user_id": "u5"}))
    assert rows == [1500, 2000]
    assert storage.crawler.stats.get_value("storage/superseded") == 1
    assert not Spool(spool_path).pending()


async def test_note_pipelines_pass_a_profile_through(mongo_uri, mongo_db_name, tmp_path: Path):
    crawler = project_crawler(
        {
            "MONGO_URI": mongo_uri,
            "MONGO_DATABASE": mongo_db_name,
            "ENRICH_BACKEND": "off",
            "IMAGES_STORE": str(tmp_path / "images"),
        }
    )
    profile = make_profile(2)
    before = repr(profile)
    incremental = IncrementalPipeline(crawler, MongoSettings.from_settings(crawler.settings))
    media = NoteMediaPipeline.from_crawler(crawler)
    enrichment = EnrichmentPipeline.from_crawler(crawler)
    for pipeline in (incremental, media, enrichment):
        assert await pipeline.process_item(profile) is profile, type(pipeline).__name__
    assert repr(profile) == before
    # A note next to it still becomes a note unit.
    assert prepare_unit(make_note(1), now=T0, run_id="r", max_chars=100)["type"] == "note"


async def test_user_stats_is_a_time_series_like_note_stats(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
):
    storage = build_storage(mongo_uri, mongo_db_name, tmp_path / "spool.jsonl")
    await run_pipeline(storage, [make_profile(1), make_profile(1, fetched_at=T0 + timedelta(1))])
    options = {
        info["name"]: info["options"].get("timeseries")
        for info in mongo_sync.list_collections(
            filter={"name": {"$in": ["user_stats", "note_stats"]}}
        )
    }
    assert options["user_stats"] == {**options["note_stats"], "metaField": "user_id"}
    assert (options["user_stats"]["timeField"], options["user_stats"]["granularity"]) == (
        "crawled_at",
        "hours",
    )
    rows = list(mongo_sync.user_stats.find({"user_id": "u1"}).sort("crawled_at", 1))
    assert [r["crawled_at"] for r in rows] == [
        T0.replace(tzinfo=None),
        (T0 + timedelta(1)).replace(tzinfo=None),
    ]
    assert "user_id_crawled_at" in mongo_sync.user_stats.index_information()


async def test_an_existing_plain_user_stats_stays_plain(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
):
    mongo_sync.create_collection("user_stats")  # a store from before user_stats was a series
    mongo_sync.user_stats.insert_one({"user_id": "u1", "crawled_at": T0, "fans": 1})
    storage = build_storage(mongo_uri, mongo_db_name, tmp_path / "spool.jsonl")
    await run_pipeline(storage, [make_profile(1, fetched_at=T0 + timedelta(1))])
    info = next(mongo_sync.list_collections(filter={"name": "user_stats"}))
    assert not (info.get("options") or {}).get("timeseries") and info.get("type") != "timeseries"
    assert [r["fans"] for r in mongo_sync.user_stats.find({}).sort("crawled_at", 1)] == [1, 1001]
    client = AsyncMongoClient(mongo_uri)
    try:
        assert await collection_kind(client[mongo_db_name], "user_stats") == "plain"
        assert await collection_kind(client[mongo_db_name], "note_stats") == "timeseries"
        assert await collection_kind(client[mongo_db_name], "nothing_here") == "plain"
    finally:
        await client.close()


async def test_a_profile_with_ten_thousand_tags_is_stored_with_its_cut_named(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
):
    """The parser keeps 50 of 10,000 tags (its ProfileTruncated warning): the document
    holds the 50 and names the cut field, so a reader knows the list is incomplete."""
    state = extract_initial_state(real_bytes(PROFILE_09))
    state["user"]["userPageData"]["tags"] = [
        {"name": f"t{i}", "tagType": "info"} for i in range(10_000)
    ]
    item = user_from_state(state, fetched_at=T0)
    assert [w.reason for w in profile_warnings(item)] == ["tags_truncated"]
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s"), [item])
    doc = mongo_sync.users.find_one({"_id": item.user_id})
    assert len(doc["tags"]) == 50 and doc["tags"][-1]["name"] == "t49"
    assert doc["truncated"] == ["tags"] and doc["truncated_fields"] == ["tags"]
    assert mongo_sync.user_stats.count_documents({"user_id": item.user_id}) == 1
