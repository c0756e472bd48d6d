"""End to end: creator profiles (issue 15) from `scrapy crawl xhs` into `users` / `user_stats`.

Real `scrapy crawl` subprocesses against the sandbox site (Chromium for the listings)
and a MongoDB-wire server of the test process (for the crawl an external one: the run
"the next day" is under libfaketime, which must not own the embedded server). Ground
truth: ``Dataset.profile(user_id, day)``; the site's stats count the profile pages served.
"""

from __future__ import annotations

from typing import Any

import pytest

from crawler.parsing.counts import parse_count
from sandbox.faketime import shifted_clock_env
from sandbox.harness import sandbox_env, start_crawl

pytestmark = pytest.mark.slow

DAY_S = 86400


def _env(site: Any, mongo_uri: str, db_name: str) -> dict[str, str]:
    return sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=db_name, ENRICH_BACKEND="off")


def _profile_pages(site: Any) -> int:
    return site.stats().get("profile_total", 0)


def _assert_matches_truth(doc: dict, truth: Any) -> None:
    """A stored user document against the sandbox's ground truth for that day."""
    assert doc["red_id"] == truth.red_id and doc["nickname"] == truth.user.nickname
    assert doc["ip_location"] == truth.ip_location and doc["desc"] == truth.desc
    assert [t["name"] for t in doc["tags"]] == [name for name, _ in truth.tags]
    for stored, shown in (("fans", "fans"), ("follows", "follows"),
                          ("likes_and_collects", "interaction")):  # fmt: skip
        assert doc[f"{stored}_raw"] == truth.shown[shown], stored
        assert doc[stored] == parse_count(truth.shown[shown]), stored


def test_users_argument_stores_both_profiles_and_their_notes(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    site = make_site()
    ds = site.dataset
    users = [u for u in ds.users() if 0 < len(ds.user_notes(u)) <= 12][:2]
    assert len(users) == 2
    result = scrapy_crawl("xhs", {"users": ",".join(users)}, _env(site, mongo_uri, mongo_db_name))
    assert result.returncode == 0, result.log[-4000:]
    assert _profile_pages(site) == 2  # the listing visits only: no second fetch
    assert result.stats.get("profiles/parsed") == 2, result.stats
    for user_id in users:
        doc = mongo_sync.users.find_one({"_id": user_id})
        assert doc is not None, result.log[-4000:]
        _assert_matches_truth(doc, ds.profile(user_id))
        assert doc["notes_seen"] == len(ds.user_notes(user_id))
        assert doc["first_seen_at"] == doc["last_crawled_at"]
        stored = {n["_id"] for n in mongo_sync.notes.find({"user.user_id": user_id}, {"_id": 1})}
        assert stored == set(ds.user_notes(user_id))
        rows = list(mongo_sync.user_stats.find({"user_id": user_id}))
        assert len(rows) == 1 and rows[0]["notes_seen"] == len(stored)
        assert rows[0]["fans"] == doc["fans"] and rows[0]["crawl_run_id"] == doc["crawl_run_id"]
    assert {i["user_id"] for i in result.items if "nickname" in i and "note_id" not in i} == set(
        users
    )


def test_authors_once_per_refresh_and_grown_counts_the_next_day(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    site = make_site()
    ds = site.dataset
    day = ds.today()
    env = _env(site, mongo_uri, mongo_db_name)
    args = {"keywords": "面经", "max_notes": "15", "authors": "1"}

    first = scrapy_crawl("xhs", args, env)
    assert first.returncode == 0, first.log[-4000:]
    authors = {n["user"]["user_id"] for n in mongo_sync.notes.find({}, {"user.user_id": 1})}
    assert len(authors) >= 3, first.log[-4000:]
    assert _profile_pages(site) == len(authors)  # one plain visit per distinct author
    assert first.stats.get("profiles/visits") == len(authors)
    assert first.stats.get("playwright/page_count") == 1  # the search page: profiles are plain
    assert {d["_id"] for d in mongo_sync.users.find({}, {"_id": 1})} == authors
    for doc in mongo_sync.users.find({}):
        _assert_matches_truth(doc, ds.profile(doc["_id"], day))
    assert mongo_sync.user_stats.count_documents({}) == len(authors)

    # Within USER_REFRESH (1 day): the same crawl fetches no profile again.
    second = scrapy_crawl("xhs", args, env)
    assert second.returncode == 0, second.log[-4000:]
    assert _profile_pages(site) == len(authors)
    assert second.stats.get("profiles/skipped_fresh") == len(authors), second.stats
    assert mongo_sync.user_stats.count_documents({}) == len(authors)

    # The next day (the crawl's clock a day ahead, the site showing tomorrow): the
    # stored notes' authors are visited again and each gets a second row, grown.
    site.control(day_offset=1)
    refs = [f"{n['_id']}:{n['xsec_token']}" for n in mongo_sync.notes.find({}, {"xsec_token": 1})]
    later = scrapy_crawl(
        "xhs",
        {"note_ids": ",".join(refs), "authors": "1"},
        shifted_clock_env(env, DAY_S + 60),
    )
    assert later.returncode == 0, later.log[-4000:]
    assert "playwright/page_count" not in later.stats  # note and profile pages: no browser
    visited = later.stats.get("profiles/visits", 0)
    assert visited >= len(authors) - 1, later.log[-4000:]  # a reposted note may be gone
    grew = 0
    for user_id in authors:
        rows = list(mongo_sync.user_stats.find({"user_id": user_id}).sort("crawled_at", 1))
        if len(rows) == 1:
            continue
        assert len(rows) == 2, rows
        assert (rows[1]["crawled_at"] - rows[0]["crawled_at"]).total_seconds() >= DAY_S
        tomorrow = ds.profile(user_id, day + 1)
        assert rows[1]["fans"] == parse_count(tomorrow.shown["fans"])
        assert rows[1]["likes_and_collects"] == parse_count(tomorrow.shown["interaction"])
        grew += rows[1]["fans"] > rows[0]["fans"]
        doc = mongo_sync.users.find_one({"_id": user_id})
        _assert_matches_truth(doc, tomorrow)
        assert doc["last_crawled_at"] == rows[1]["crawled_at"]
        assert doc["first_seen_at"] == rows[0]["crawled_at"]
    assert sum(mongo_sync.user_stats.count_documents({"user_id": u}) == 2 for u in authors) == (
        visited
    )
    assert grew >= 1  # fans shown exactly below 10,000 rise every day


def test_an_unknown_user_is_counted_and_the_crawl_goes_on(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    site = make_site()
    ds = site.dataset
    good = next(u for u in ds.users() if 0 < len(ds.user_notes(u)) <= 12)
    unknown = "0" * 24  # the id form, but nobody's: the site answers its 404 page
    result = scrapy_crawl(
        "xhs", {"users": f"{unknown},{good}"}, _env(site, mongo_uri, mongo_db_name)
    )
    assert result.returncode == 0, result.log[-4000:]
    errors = {k: v for k, v in result.stats.items() if k.startswith("xhs/parse_error/")}
    assert errors == {
        "xhs/parse_error/listing_failed": 1,  # HTTP 404
        "xhs/parse_error/profile/profile_unavailable": 1,  # the page's result: code -1
    }, result.log[-4000:]
    assert [d["_id"] for d in mongo_sync.users.find({}, {"_id": 1})] == [good]
    assert mongo_sync.notes.count_documents({"user.user_id": good}) == len(ds.user_notes(good))


def test_distributed_workers_adopt_authors_and_skip_listed_profiles(
    make_site, redis_url, mongo_uri, mongo_db_name, mongo_sync, tmp_path
) -> None:
    """Two `scrapy crawl` workers on one Redis run: the seeder lists two users with
    `-a authors=1`, the other is started bare. The bare one adopts `authors=1` (it asks for
    the authors of the notes it fetches), and since the listed users' profiles were marked
    seen in the shared duplicate filter at start, neither worker fetches a profile page
    beyond the two listings."""
    site = make_site()
    ds = site.dataset
    users = [u for u in ds.users() if 6 <= len(ds.user_notes(u)) <= 12][:2]
    assert len(users) == 2
    env = _env(site, mongo_uri, mongo_db_name)
    env.update(REDIS_URL=redis_url, REDIS_RUN=f"users-{mongo_db_name}")
    common = {"DOWNLOAD_DELAY": "0.3", "DISTRIBUTED_IDLE_TIMEOUT": "15", "CONCURRENT_REQUESTS": "2"}
    with (
        start_crawl("xhs", {"users": ",".join(users), "authors": "1"}, env, workdir=tmp_path,
                    label="seed", settings={**common, "SCHEDULER_FLUSH_ON_START": "True"}) as w0,
        start_crawl("xhs", {}, env, workdir=tmp_path, label="bare", settings=common) as w1,
    ):  # fmt: skip
        seed, bare = w0.wait(timeout=300), w1.wait(timeout=300)
    for result in (seed, bare):
        assert result.returncode == 0, result.log[-4000:]
    adopted = [line for line in bare.log.splitlines() if "adopted run arguments from" in line]
    assert len(adopted) == 1 and adopted[0].endswith("authors=1"), bare.log[-4000:]
    bare_notes = [i for i in bare.items if "note_id" in i]
    assert bare_notes, f"the bare worker got no note: {len(seed.items)} on the seeder"
    # The bare worker asked for its notes' authors (adopted authors=1) and the shared
    # filter dropped every such request: the users were listed by the seeder.
    # (scrapy-redis's filter keeps no stat of its own: no answer came, no page was served)
    assert bare.stats.get("profiles/requested", 0) >= 1, bare.stats
    assert "profiles/visits" not in bare.stats
    assert _profile_pages(site) == 2, site.stats()
    assert seed.stats.get("profiles/requested") == seed.stats.get("profiles/visits") == 2
    assert sorted(d["_id"] for d in mongo_sync.users.find({}, {"_id": 1})) == sorted(users)
    assert mongo_sync.user_stats.count_documents({}) == 2
    stored = mongo_sync.notes.count_documents({"user.user_id": {"$in": users}})
    assert stored == sum(len(ds.user_notes(u)) for u in users)
