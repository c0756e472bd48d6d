"""End to end: `scrapy crawl xhs` discovering notes in Chromium on the sandbox site.

The search and profile pages sign their own API calls; the crawler only reads the
answers. These tests run the real `scrapy crawl` in a subprocess against the sandbox
site and the embedded MongoDB-wire server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from sandbox.harness import sandbox_env

pytestmark = pytest.mark.slow


def _post_unsigned(site, keyword: str) -> tuple[int, dict]:
    body = json.dumps({"keyword": keyword, "page": 1, "page_size": 20, "search_id": "x",
                       "sort": "general", "note_type": 0}).encode()  # fmt: skip
    request = urllib.request.Request(
        f"{site.url}/api/sns/web/v1/search/notes",
        data=body,
        headers={"Content-Type": "application/json", "Cookie": "a1=sandbox; web_session=sandbox"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_keyword_discovery_yields_distinct_notes_matching_the_dataset(
    sandbox_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    assert _post_unsigned(sandbox_site, "大模型") == (406, {"code": -1, "success": False})
    env = sandbox_env(sandbox_site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name,
                      ENRICH_BACKEND="off")  # fmt: skip
    result = scrapy_crawl("xhs", {"keywords": "大模型", "max_notes": "40"}, env)
    assert result.returncode == 0, result.log[-4000:]
    ids = [item["note_id"] for item in result.items]
    assert len(ids) == 40 and len(set(ids)) == 40, result.log[-4000:]
    for item in result.items:
        truth = sandbox_site.dataset.note_by_id(item["note_id"])
        assert item["title"] == truth.title
        assert item["tags"] == list(truth.tags)
        assert item["found_via"] == "keyword:大模型"
        assert len(item["images"]) == len(truth.images)
        assert item["xsec_token"]


def test_reference_post_found_by_keyword_with_sandbox_images(
    sandbox_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    from sandbox.dataset import REFERENCE_NOTE_ID

    env = sandbox_env(sandbox_site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name,
                      ENRICH_BACKEND="off")  # fmt: skip
    result = scrapy_crawl("xhs", {"keywords": "面经", "max_notes": "30"}, env)
    assert result.returncode == 0, result.log[-4000:]
    reference = [item for item in result.items if item["note_id"] == REFERENCE_NOTE_ID]
    assert reference, result.log[-4000:]
    note = reference[0]
    assert note["title"] == "算法面经：字节豆包大模型11.13"
    assert len(note["images"]) == 3
    for image in note["images"]:
        assert image["url"].startswith(sandbox_site.cdn_url)
        assert image["status"] == "ok", image
        assert image["original_urls"][0].startswith(sandbox_site.cdn_url)


def test_signature_rotation_mid_crawl_does_not_stop_discovery(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    site = make_site()
    # The site rotates its signature right after answering the page's first search call:
    # the page's next call, signed by the script it loaded, is rejected with HTTP 406.
    site.control(rotate_after_calls=1)
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name,
                      ENRICH_BACKEND="off")  # fmt: skip
    result = scrapy_crawl(
        "xhs", {"keywords": "大模型", "max_notes": "60"}, env, settings={"ITEM_PIPELINES": "{}"}
    )
    assert result.returncode == 0, result.log[-4000:]
    assert site.knobs.signature_version == 2
    assert site.stats().get("search_api_signature_rejected", 0) >= 1, "no 406: proves nothing"
    assert "signature_rejected on keyword:大模型, reloading the page" in result.log
    assert len({item["note_id"] for item in result.items}) == 60, result.log[-4000:]


def test_captcha_threshold_backs_off_and_finishes(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    site = make_site(captcha_threshold=50, captcha_window=4)
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, ENRICH_BACKEND="off")
    ids = [f"{site.dataset.note(i).note_id}:{site.dataset.note(i).xsec_token}" for i in range(80)]
    result = scrapy_crawl(
        "xhs",
        {"note_ids": ",".join(ids)},
        env,
        settings={"ANTIBOT_COOLDOWN": "4", "ITEM_PIPELINES": "{}"},
    )
    assert result.returncode == 0, result.log[-4000:]
    assert "antibot/captcha" in result.log
    assert len({item["note_id"] for item in result.items}) == 80 - len(
        site.dataset.deleted_ids(range(80))
    )


def test_expired_cookie_stops_quickly_with_clear_message(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    site = make_site()
    site.control(expire_cookies=True)
    env = sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, ENRICH_BACKEND="off")
    started = time.monotonic()
    result = scrapy_crawl("xhs", {"keywords": "大模型", "max_notes": "20"}, env, timeout=120)
    assert result.returncode == 4, result.log[-4000:]
    assert "cookie expired, refresh XHS_COOKIES" in result.log
    assert time.monotonic() - started < 90
    assert result.items == []


def test_user_profile_discovery_reads_ssr_notes_then_scrolls(
    sandbox_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    user_id = sandbox_site.dataset.users()[0]
    expected = sandbox_site.dataset.user_notes(user_id)
    assert len(expected) > 30, "the profile must need cursor paging past the SSR notes"
    env = sandbox_env(sandbox_site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name,
                      ENRICH_BACKEND="off")  # fmt: skip
    result = scrapy_crawl(
        "xhs", {"users": user_id}, env, settings={"ITEM_PIPELINES": "{}", "DISCOVERY_WAIT": "3"}
    )
    assert result.returncode == 0, result.log[-4000:]
    notes = [item for item in result.items if "note_id" in item]  # + the profile (issue 15)
    assert sorted(item["note_id"] for item in notes) == sorted(expected)
    assert {item["user"]["user_id"] for item in notes} == {user_id}
    assert {item["found_via"] for item in notes} == {f"user:{user_id}"}
    assert [item["user_id"] for item in result.items if "note_id" not in item] == [user_id]
