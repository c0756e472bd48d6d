"""Pure helpers of the crawler side: note URLs, spider arguments, settings, identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scrapy import Request
from scrapy.settings import Settings

from crawler.config import ConfigError, CrawlConfig, parse_cookie_header, secret_fingerprint
from crawler.fingerprint import NoteFingerprinter, RedisNoteDupeFilter, note_fingerprint
from crawler.spiders.xhs import SpiderArgumentError, XhsSpider, parse_since
from crawler.urls import (
    BadNoteReference,
    note_url,
    parse_note_id_ref,
    parse_note_url,
    split_arg,
)

NOTE = "685e9b3d00000000240089a5"


def test_parse_note_url_keeps_token_and_source() -> None:
    url = f"https://www.xiaohongshu.com/explore/{NOTE}?xsec_token=ABC%3D&xsec_source=pc_search"
    assert parse_note_url(url) == (NOTE, "ABC=", "pc_search")
    assert parse_note_url(f"https://www.xiaohongshu.com/discovery/item/{NOTE}") == (
        NOTE,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("ftp://x/explore/" + NOTE, "http(s)"),
        ("https://www.xiaohongshu.com/explore/123", "24-hex"),
        ("/explore/" + NOTE, "http(s)"),
        ("https://www.xiaohongshu.com/user/profile/abc", "24-hex"),
    ],
)
def test_bad_note_urls_name_the_problem(bad: str, words: str) -> None:
    with pytest.raises(BadNoteReference, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_note_url(bad)


def test_note_id_refs() -> None:
    assert parse_note_id_ref(f"{NOTE.upper()}:tok") == (NOTE, "tok")
    assert parse_note_id_ref(NOTE) == (NOTE, None)
    with pytest.raises(BadNoteReference, match="24 hex"):
        parse_note_id_ref("../../etc/passwd")


def test_note_url_round_trip() -> None:
    url = note_url("http://127.0.0.1:8800/", NOTE, "t+/=", "pc_user")
    assert parse_note_url(url) == (NOTE, "t+/=", "pc_user")
    assert note_url("http://h", NOTE, None, None) == f"http://h/explore/{NOTE}"
    assert split_arg(" a, ,b,") == ["a", "b"]


def test_same_note_with_two_tokens_has_one_identity() -> None:
    a = Request(f"http://h/explore/{NOTE}?xsec_token=one")
    b = Request(f"http://h/explore/{NOTE}?xsec_token=two&xsec_source=pc_user")
    other = Request("http://h/search_result?keyword=x")
    fingerprinter = NoteFingerprinter()
    assert fingerprinter.fingerprint(a) == fingerprinter.fingerprint(b)
    assert fingerprinter.fingerprint(a) != fingerprinter.fingerprint(other)
    assert note_fingerprint(other) is None
    dupefilter = RedisNoteDupeFilter(server=None, key="k")
    assert dupefilter.request_fingerprint(a) == dupefilter.request_fingerprint(b)
    assert dupefilter.request_fingerprint(a) != dupefilter.request_fingerprint(other)


def test_cookie_header_parsing_and_fingerprint() -> None:
    assert parse_cookie_header("a1=sandbox; web_session=sandbox") == {
        "a1": "sandbox",
        "web_session": "sandbox",
    }
    assert parse_cookie_header("  ") == {}
    with pytest.raises(ConfigError, match="XHS_COOKIES"):
        parse_cookie_header("not a cookie")
    fp = secret_fingerprint("a1=sandbox")
    assert len(fp) == 8 and "sandbox" not in fp


def test_crawl_config_validates_settings() -> None:
    base = {"XHS_BASE_URL": "http://127.0.0.1:1/", "XHS_IMAGE_ORIGIN_TEMPLATES": "http://c/{token}"}
    config = CrawlConfig.from_settings(Settings(base))
    assert config.base_url == "http://127.0.0.1:1"
    assert config.original_templates == ("http://c/{token}",)
    with pytest.raises(ConfigError, match="XHS_BASE_URL"):
        CrawlConfig.from_settings(Settings({"XHS_BASE_URL": "www.xiaohongshu.com"}))
    with pytest.raises(ConfigError, match="token"):
        CrawlConfig.from_settings(Settings({**base, "XHS_IMAGE_ORIGIN_TEMPLATES": "http://c/x"}))


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


def test_bad_spider_argument_is_one_line_and_exit_status_2() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "xhs", "-a", "max_notes=ten"],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "max_notes= must be a whole number: 'ten'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_note_creation_time_is_read_from_the_id() -> None:
    from crawler.urls import note_created_at

    # the real 2025 page (tests/data/xhs-real/01_…): published 2025-06-27
    assert note_created_at(NOTE) == datetime(2025, 6, 27, 13, 23, 9, tzinfo=UTC)
    assert note_created_at("not-an-object-id") is None


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
