"""crawler/config.py: the crawl's settings parsed and validated once (CrawlConfig)."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from crawler.config import ConfigError, CrawlConfig, parse_cookie_header, secret_fingerprint


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
