"""crawler/spiders/profiles.py without a crawl: reading profile responses (fixture 09 and
hostile pages: each a counted reason, never an exception), `-a authors=` parsing, and the
USER_REFRESH check against the real Mongo-wire server."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from scrapy.http import HtmlResponse, Request
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.core.timeutil import utcnow
from crawler.spiders.profiles import ProfileVisits, parse_authors_arg
from pipelines.mongo import close_mongo
from sandbox.harness import free_port
from tests.factories import make_note, make_user, project_crawler
from tests.parsing.samples import PROFILE_09, PROFILE_09_URL, real_text

OWNER_09 = PROFILE_09_URL.rsplit("/", 1)[1]
BASE = "https://www.xiaohongshu.com"


def _visits(*, authors: bool = True, **settings) -> ProfileVisits:
    crawler = project_crawler(settings)
    crawler.stats.open_spider()
    return ProfileVisits.from_crawler(
        crawler, authors=authors, base_url=BASE, max_page_bytes=2_000_000
    )


def _response(body: str, *, url: str = PROFILE_09_URL, status: int = 200) -> HtmlResponse:
    return HtmlResponse(url, status=status, body=body.encode(), request=Request(url))


def _page(state_text: str) -> str:
    return f"<html><body><script>window.__INITIAL_STATE__={state_text}</script></body></html>"


def _state_09() -> str:
    raw = real_text(PROFILE_09)
    return raw[raw.index("{") :].rstrip().rstrip(";")


def test_authors_argument() -> None:
    assert [parse_authors_arg(v) for v in (None, "", "1", "true", "0", "no")] == [
        False, False, True, True, False, False,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="authors= must be 1 or 0: 'maybe'"):
        parse_authors_arg("maybe")


def test_real_profile_page_gives_the_item() -> None:
    visits = _visits()
    item = visits.parse(_response(_page(_state_09())), OWNER_09)
    assert item is not None and item.user_id == OWNER_09 and item.nickname == "Bear Meucci"
    assert item.interactions.fans.value is not None and item.fetched_at is not None
    assert visits.stats.get_value("profiles/parsed") == 1


def _hostile_pages() -> list[tuple[str, str, int]]:
    state = _state_09()
    tags = json.dumps([{"name": f"t{i}", "tagType": "info"} for i in range(10_000)])
    return [
        (_page(state.replace('"userPageData": {', '"userPageData": undefined, "x": {', 1)),
         "profile_missing", 200),
        (_page(state.replace('"basicInfo": {', '"basicInfo": undefined, "x": {', 1)),
         "profile_missing", 200),
        (_page(state.replace('"interactions": [', '"interactions": "many", "x": [', 1)),
         "profile_malformed", 200),
        (_page('{"user": {"userPageData": [1, 2]}'), "state_malformed", 200),
        ("<html><body>nothing here</body></html>", "state_missing", 200),
        ("", "empty_page", 200),
        (_page(state), "captcha", 461),
        (_page(state.replace('"tags": [', f'"tags": {tags[:-1]}, ', 1)), "", 200),
    ]  # fmt: skip


@pytest.mark.parametrize(("body", "reason", "status"), _hostile_pages())
def test_hostile_profile_pages_are_counted_not_raised(body: str, reason: str, status: int) -> None:
    visits = _visits()
    item = visits.parse(_response(body, status=status), OWNER_09)
    stats = visits.stats.get_stats()
    errors = {k: v for k, v in stats.items() if k.startswith("xhs/parse_error/")}
    warnings = {k: v for k, v in stats.items() if k.startswith("xhs/parse_warning/")}
    assert stats["profiles/visits"] == 1  # an answer came, whatever it held
    if not reason:  # 10,000 tags: the profile kept, its tags capped, named and counted
        assert item is not None and len(item.tags) == 50 and item.truncated == ["tags"]
        assert errors == {}
        assert warnings == {"xhs/parse_warning/profile/tags_truncated": 1}
        return
    assert item is None
    assert errors == {f"xhs/parse_error/profile/{reason}": 1}
    assert warnings == {}


def test_login_page_is_a_reason_too() -> None:
    visits = _visits()
    login = f"{BASE}/login?redirectPath=%2Fuser%2Fprofile%2F{OWNER_09}"
    assert visits.parse(_response("<html>login</html>", url=login), OWNER_09) is None
    assert visits.stats.get_value("xhs/parse_error/profile/login_required") == 1


async def test_author_visits_once_and_not_within_user_refresh(
    mongo_uri, mongo_db_name, mongo_sync
) -> None:
    now = utcnow()
    mongo_sync.users.insert_many(
        [
            {"_id": "fresh1", "last_crawled_at": now - timedelta(hours=2)},
            {"_id": "stale1", "last_crawled_at": now - timedelta(days=2)},
        ]
    )
    visits = _visits(MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name)
    try:

        async def ask(user_id: str):
            return await visits.author_request(
                make_note(1, user=make_user(user_id=user_id)), callback=None
            )

        assert await ask("fresh1") is None
        request = await ask("stale1")
        assert request is not None and request.url == f"{BASE}/user/profile/stale1"
        assert request.cb_kwargs == {"user_id": "stale1"} and not request.meta.get("playwright")
        assert await ask("never1") is not None
        assert await ask("stale1") is None  # once per run
        stats = visits.stats
        assert stats.get_value("profiles/skipped_fresh") == 1
        assert stats.get_value("profiles/requested") == 2
        assert stats.get_value("profiles/visits") is None  # counted when an answer comes
    finally:
        await close_mongo(visits.crawler)


async def test_authors_off_or_refresh_zero_or_database_down() -> None:
    off = _visits(authors=False)
    assert await off.author_request(make_note(1), callback=None) is None
    down = _visits(
        MONGO_URI=f"mongodb://127.0.0.1:{free_port()}/",
        MONGO_SERVER_SELECTION_TIMEOUT_MS=300,
    )
    try:
        assert await down.author_request(make_note(1), callback=None) is not None
        assert down.stats.get_value("profiles/refresh_check_failed") == 1
    finally:
        await close_mongo(down.crawler)
    always = _visits(USER_REFRESH=0)
    assert await always.author_request(make_note(2), callback=None) is not None


def _failure(request: Request, exc: Exception) -> Failure:
    try:
        raise exc
    except type(exc):
        failure = Failure()
    failure.request = request  # as Scrapy's errback receives it
    return failure


async def test_a_profile_that_fails_to_download_is_counted() -> None:
    visits = _visits(USER_REFRESH=0)
    request = await visits.author_request(
        make_note(1, user=make_user(user_id="gone1")), callback=None, errback=visits.failed
    )
    assert request is not None and request.errback == visits.failed
    assert request.errback(_failure(request, ConnectionRefusedError("refused"))) == []
    answered = HtmlResponse(request.url, status=503, body=b"busy", request=request)
    assert request.errback(_failure(request, HttpError(answered, "Ignoring non-200"))) == []
    stats = visits.stats
    assert stats.get_value("xhs/parse_error/profile/download_failed") == 2
    assert stats.get_value("profiles/requested") == 1
    assert stats.get_value("profiles/visits") == 1  # the 503 was an answer
