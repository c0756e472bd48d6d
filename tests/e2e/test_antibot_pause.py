"""End to end: a captcha met by the browser's listing pauses the whole crawl
(``crawler.core.antibot_pause``), as one met by the engine's requests or a comment page
does (tests/e2e/test_comments.py, tests/crawler/test_comments_thread.py)."""

from __future__ import annotations

import pytest

from sandbox.harness import captcha_burst, sandbox_env

pytestmark = pytest.mark.slow


def test_a_listing_captcha_pauses_the_crawl_and_discovery_finishes(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    site = make_site()
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name,
                      ENRICH_BACKEND="off")  # fmt: skip
    # Once the search page's first call was answered, the next scroll meets the burst.
    with captcha_burst(site, after=["search_api_total"], calls=1, seconds=3.0):
        result = scrapy_crawl(
            "xhs",
            {"keywords": "大模型", "max_notes": "60"},
            env,
            settings={"ANTIBOT_COOLDOWN": "3", "ITEM_PIPELINES": "{}"},
        )
    assert result.returncode == 0, result.log[-4000:]
    assert site.stats().get("search_api_captcha", 0) >= 1, "no listing captcha: proves nothing"
    assert result.stats.get("xhs/listing_reloads/captcha", 0) >= 1, result.log[-4000:]
    assert result.stats.get("antibot/pauses/listing", 0) >= 1
    # One pause for the crawl (a note page's captcha in the same burst may have started it).
    assert "pausing requests and comment pages for 3 s" in result.log
    assert len({item["note_id"] for item in result.items}) == 60, result.log[-4000:]
