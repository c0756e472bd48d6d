"""Distributed runs: the seeding worker publishes its content options in Redis and the
other workers of the run adopt them (crawler/spiders/run_args.py), against a real
redis-server; a worker's own conflicting option is refused in one line (exit status 2).
Also: a `-a users=` profile marked seen in the shared duplicate filter is the same
request as that user's author visit (crawler/fingerprint.py's Redis filter)."""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

import pytest
import redis
from scrapy.utils.test import get_crawler

from crawler.comments import CommentLimits
from crawler.fingerprint import RedisNoteDupeFilter
from crawler.settings import knob_defaults
from crawler.spiders.run_args import run_args_key
from crawler.spiders.xhs import SpiderArgumentError, XhsSpider
from sandbox.crawlenv import isolated_environ
from sandbox.harness import run_crawl
from tests.factories import make_note, make_user

NOTE = "685e9b3d00000000240089a5"


def _settings(redis_url: str, run: str, **extra: object) -> dict:
    return {
        **knob_defaults,
        "XHS_BASE_URL": "http://127.0.0.1:9",
        "REDIS_URL": redis_url,
        "REDIS_RUN": run,
        "DISTRIBUTED_IDLE_TIMEOUT": 5,
        **extra,
    }


def _worker(redis_url: str, run: str, args: dict[str, str], **extra: object) -> XhsSpider:
    crawler = get_crawler(XhsSpider, _settings(redis_url, run, **extra))
    return XhsSpider.from_crawler(crawler, **args)


@pytest.fixture
def run() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_other_workers_adopt_the_seeders_options(redis_url: str, run: str, caplog) -> None:
    seed_args = {"note_ids": f"{NOTE}:tok", "authors": "1", "comments": "all", "replies": "3"}
    with caplog.at_level(logging.INFO, logger="crawler.spiders.run_args"):
        seeder = _worker(redis_url, run, seed_args)
        worker = _worker(redis_url, run, {})
    assert seeder.seeding and not worker.seeding
    record = json.loads(redis.Redis.from_url(redis_url).get(f"xhs:{run}:xhs:run_args"))
    assert record["args"] == {"authors": "1", "comments": "all", "replies": "3"}
    assert record["worker"].endswith(f":{os.getpid()}")
    # The worker reads notes as the seeder does: authors' profiles, threads, replies.
    assert worker.visit_authors and worker.profiles.authors
    assert worker.comment_limits == CommentLimits(None, 3) == seeder.comment_limits
    assert worker.threads.limits == seeder.threads.limits
    assert worker.xhs_args == {"authors": "1", "comments": "all", "replies": "3"}
    adopted = [r.getMessage() for r in caplog.records if "adopted run arguments" in r.getMessage()]
    assert adopted == [
        f"xhs: adopted run arguments from {record['worker']}: authors=1, comments=all, replies=3"
    ]


def test_a_later_seeder_replaces_the_runs_options(redis_url: str, run: str) -> None:
    _worker(redis_url, run, {"note_ids": f"{NOTE}:tok", "authors": "1", "max_age": "7d"})
    _worker(redis_url, run, {"note_ids": f"{NOTE}:tok", "comments": "5"})
    worker = _worker(redis_url, run, {})
    assert not worker.visit_authors and worker.comment_limits == CommentLimits(5, 0)
    assert worker.published_since is None


def test_a_conflicting_option_on_a_worker_is_refused(redis_url: str, run: str) -> None:
    _worker(redis_url, run, {"note_ids": f"{NOTE}:tok", "authors": "1", "comments": "all"})
    settings = get_crawler(XhsSpider, _settings(redis_url, run)).settings
    # The same values (spelled otherwise) are fine.
    XhsSpider.check_arguments(settings, {"authors": "true", "comments": "ALL"})
    with pytest.raises(SpiderArgumentError) as refused:
        XhsSpider.check_arguments(settings, {"comments": "5", "since": "2026-11-01"})
    assert str(refused.value) == (
        "comments=5 (the run's: comments=all), since=2026-11-01 (the run's: since=(not given)): "
        f"this worker's -a conflicts with the arguments of run '{run}' published by "
        f"{json.loads(redis.Redis.from_url(redis_url).get(f'xhs:{run}:xhs:run_args'))['worker']}"
        "; drop it, or use another REDIS_RUN"
    )
    with pytest.raises(SpiderArgumentError, match="authors=0"):
        _worker(redis_url, run, {"authors": "0"})  # at creation too (a seeder came meanwhile)


def test_refused_worker_exits_2_in_one_line(redis_url: str, run: str, tmp_path: Path) -> None:
    _worker(redis_url, run, {"note_ids": f"{NOTE}:tok", "comments": "all"})
    env = {**isolated_environ(), "REDIS_URL": redis_url, "REDIS_RUN": run}
    result = run_crawl("xhs", {"comments": "3"}, env, workdir=tmp_path, feed=False, timeout=60)
    assert result.returncode == 2, result.log[-3000:]
    lines = [line for line in result.stderr.splitlines() if "conflicts" in line]
    assert len(lines) == 1 and "comments=3 (the run's: comments=all)" in lines[0]
    assert "Traceback" not in result.stderr


def test_without_a_seeder_a_worker_keeps_its_own_options(redis_url: str, run: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="crawler.spiders.run_args"):
        worker = _worker(redis_url, run, {"comments": "2"}, DISTRIBUTED_IDLE_TIMEOUT=0.3)
    assert worker.comment_limits == CommentLimits(2, 0) and not worker.visit_authors
    assert any("no run arguments published" in r.getMessage() for r in caplog.records)


def test_without_redis_nothing_is_shared() -> None:
    crawler = get_crawler(XhsSpider, {**knob_defaults, "XHS_BASE_URL": "http://127.0.0.1:9"})
    spider = XhsSpider.from_crawler(crawler, note_ids=f"{NOTE}:tok", authors="1")
    assert spider.visit_authors and spider.xhs_args["authors"] == "1"


async def test_listed_profile_and_author_visit_share_one_fingerprint(
    redis_url: str, run: str
) -> None:
    """What claim_listed puts in the shared filter is what another worker's author visit
    of that user asks for: the second is a duplicate there."""
    seeder = _worker(redis_url, run, {"users": "listed1", "authors": "1"}, XHS_COOKIES="a1=x")
    worker = _worker(redis_url, run, {}, XHS_COOKIES="a1=x")
    server = redis.Redis.from_url(redis_url)
    shared = RedisNoteDupeFilter(server, key=f"xhs:{run}:xhs:dupefilter")
    assert not shared.request_seen(seeder.profiles.profile_request("listed1"))
    visit = await worker.profiles.author_request(
        make_note(1, user=make_user(user_id="listed1")), worker.parse_profile, worker.profile_failed
    )
    assert visit is not None and not visit.dont_filter  # left to the shared filter
    assert shared.request_seen(visit)
    assert run_args_key(worker.crawler.settings, "xhs") == f"xhs:{run}:xhs:run_args"
