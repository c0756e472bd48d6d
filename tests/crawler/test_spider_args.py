"""The xhs spider's arguments: validated up front, one-line errors, exit status 2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.spiders.xhs import SpiderArgumentError, XhsSpider, parse_since
from sandbox.crawlenv import isolated_environ
from sandbox.harness import run_crawl

NOTE = "685e9b3d00000000240089a5"


def test_since_and_max_age() -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert parse_since(None, "7d", now) == now - timedelta(days=7)
    assert parse_since(None, "90m", now) == now - timedelta(minutes=90)
    assert parse_since("2026-11-01", None, now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since(None, None, now) is None
    with pytest.raises(SpiderArgumentError, match="max_age"):
        parse_since(None, "a week", now)
    with pytest.raises(SpiderArgumentError, match="since"):
        parse_since("yesterday", None, now)
    with pytest.raises(SpiderArgumentError, match="not both"):
        parse_since("2026-11-01", "7d", now)


def test_spider_arguments_are_validated() -> None:
    with pytest.raises(SpiderArgumentError, match="max_notes"):
        XhsSpider(max_notes="ten")
    with pytest.raises(SpiderArgumentError, match="max_notes"):
        XhsSpider(max_notes="0")
    spider = XhsSpider(keywords="大模型, 面经", max_notes="40")
    assert spider.keywords == ["大模型", "面经"]
    assert spider.xhs_args == {"keywords": "大模型, 面经", "max_notes": "40"}


def test_bad_spider_argument_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    result = run_crawl(
        "xhs", {"max_notes": "ten"}, isolated_environ(), workdir=tmp_path, feed=False, timeout=60
    )
    assert result.returncode == 2, result.log[-3000:]
    assert "max_notes= must be a whole number: 'ten'" in result.stderr
    assert "Traceback" not in result.stderr


def test_discovery_skips_listed_notes_older_than_since() -> None:
    from scrapy.utils.test import get_crawler

    from crawler.parsing.listing import ListingRef

    crawler = get_crawler(XhsSpider, {"XHS_BASE_URL": "http://127.0.0.1:9"})
    spider = XhsSpider.from_crawler(crawler, since="2025-01-01")
    old = ListingRef("5f0000000000000000000001", "t1", "2020", "normal", "search")
    new = ListingRef(NOTE, "t2", "2025", "normal", "search")
    requests = spider._requests_for_refs([old, new], "keyword:x", "pc_search")
    assert [r.meta["note_id"] for r in requests] == [NOTE]
    assert crawler.stats.get_value("xhs/skipped_older_than_since") == 1
