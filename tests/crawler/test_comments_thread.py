"""The pure side of comment reading: arguments, the thread state fed with the sandbox's
real answer shapes, the unchanged-thread rule, the shared pacing and the crawl's one
anti-bot pause (a real, unstarted engine)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from scrapy import Request
from scrapy.http import TextResponse
from scrapy.settings import Settings

from crawler import settings as project_settings
from crawler.comments import Answer, CommentLimits, CommentSettings, ThreadState, thread_unchanged
from crawler.comments.pacing import MIN_SPACING, Pacer
from crawler.comments.reader import exact_count, shown_count
from crawler.config import ConfigError
from crawler.core.antibot_pause import AntiBotPause
from crawler.core.items import NoteInteract
from crawler.middlewares import AntiBotMiddleware
from sandbox.dataset import Dataset
from sandbox.site import shapes
from tests.crawler.test_middlewares import crawler_with
from tests.factories import make_note

URLS = shapes.Urls("http://site.test", "http://cdn.test")
DS = Dataset(7, 300)
NOTE = DS.note(263)
THREAD = DS.comments(NOTE.note_id)


def page_answer(start: int, size: int = 10) -> Answer:
    chunk = THREAD[start : start + size]
    body = {"code": 0, "success": True, "data": {
        "comments": [shapes.comment_item(c, URLS) for c in chunk],
        "cursor": chunk[-1].comment_id if chunk else "",
        "has_more": start + size < len(THREAD)}}  # fmt: skip
    return Answer("page", 200, json.dumps(body).encode())


def reply_answer(root, start: int, size: int = 10) -> Answer:
    chunk = root.replies[start : start + size]
    body = {"code": 0, "success": True, "data": {
        "comments": [shapes.reply_item(c, URLS) for c in chunk],
        "cursor": chunk[-1].comment_id if chunk else "",
        "has_more": start + size < len(root.replies)}}  # fmt: skip
    return Answer("replies", 200, json.dumps(body).encode(), root.comment_id)


def read_all(state: ThreadState, *, twice: bool = False) -> None:
    """Feed the state every answer a full read gets (``twice``: each page again, as after
    a reload), following its own wishes."""
    start = 0
    while state.wants_roots:
        for _ in range(2 if twice else 1):
            assert state.take(page_answer(start)) is None
        start += 10
    by_id = {r.comment_id: r for r in THREAD}
    for root_id in state.roots_to_expand():
        root = by_id[root_id]
        offset = 1  # the inline reply
        while root_id in state.roots_to_expand():
            assert state.take(reply_answer(root, offset)) is None
            offset += 10


def test_limits_parse_and_refuse_clearly() -> None:
    assert CommentLimits.parse(None, None) == CommentLimits(0, 0)
    assert not CommentLimits.parse("0", None).enabled
    assert CommentLimits.parse("all", "ALL") == CommentLimits(None, None)
    assert CommentLimits.parse(" 5 ", "2") == CommentLimits(5, 2)
    for comments, replies, message in (
        ("x", None, "comments= must be a whole number or 'all': 'x'"),
        ("-2", None, "comments= must be 0 or more"),
        ("3", "1.5", "replies= must be a whole number"),
        (None, "3", "replies= needs comments="),
    ):
        with pytest.raises(ValueError, match=message):
            CommentLimits.parse(comments, replies)


def _settings(**values) -> Settings:
    base = {k: v for k, v in vars(project_settings).items() if k.isupper()}
    return Settings({**base, **values})


def test_settings_need_a_privacy_key_to_pseudonymize_and_never_show_it() -> None:
    assert not CommentSettings.from_settings(_settings()).pseudonymize
    with pytest.raises(ConfigError, match="PRIVACY=pseudonymize needs PRIVACY_KEY"):
        CommentSettings.from_settings(_settings(PRIVACY="pseudonymize"))
    with pytest.raises(ConfigError, match=r"PRIVACY must be one of off\|pseudonymize, got .hide."):
        CommentSettings.from_settings(_settings(PRIVACY="hide"))
    with pytest.raises(ConfigError, match="COMMENTS_WAIT must be above 0"):
        CommentSettings.from_settings(_settings(COMMENTS_WAIT="0"))
    key = "a-very-secret-key-123"
    parsed = CommentSettings.from_settings(_settings(PRIVACY="pseudonymize", PRIVACY_KEY=key))
    assert parsed.pseudonymize and key not in repr(parsed)


def test_full_read_keeps_every_comment_once_even_when_pages_come_twice() -> None:
    state = ThreadState(NOTE.note_id, CommentLimits(None, None))
    read_all(state, twice=True)
    assert state.done
    truth = [c.comment_id for root in THREAD for c in (root, *root.replies)]
    assert [c.comment_id for c in state.comments()] == truth
    assert state.duplicates > 0 and not state.skipped
    assert state.incomplete_reason(None) is None
    reply = next(c for c in state.comments() if c.root_comment_id)
    assert reply.target_comment is not None and reply.like_count.raw is not None


def test_limits_cut_roots_and_replies() -> None:
    state = ThreadState(NOTE.note_id, CommentLimits(15, 2))
    read_all(state)
    assert state.done and len(state.roots) == 15
    assert all(len(replies) <= 2 for replies in state.replies.values())
    assert [r for r in state.roots] == [c.comment_id for c in THREAD[:15]]


def test_answers_that_cannot_be_used_say_what_to_do() -> None:
    state = ThreadState(NOTE.note_id, CommentLimits(None, None))
    captcha = Answer("page", 461, b'{"code": 461, "success": false, "msg": "\\u5b89"}')
    assert state.take(captcha).action == "reload"
    assert state.take(Answer("replies", 461, captcha.body, "a" * 24)).action == "cooldown"
    rotated = state.take(Answer("page", 406, b'{"code": -1, "success": false}'))
    assert (rotated.reason, rotated.action) == ("signature_rejected", "reload")
    cut = state.take(Answer("page", 200, page_answer(0).body[:300]))
    assert (cut.reason, cut.action) == ("response_malformed", "retry")
    expired = state.take(Answer("page", 200, b'{"code": -100, "success": false}'))
    assert expired.action == "fatal"
    assert state.take(Answer("page", 502, b"bad gateway")).reason == "http_502"
    assert not state.roots and state.wants_roots  # nothing was kept from them


def test_a_refused_reply_page_closes_that_root_with_its_reason() -> None:
    state = ThreadState(NOTE.note_id, CommentLimits(None, None))
    state.take(page_answer(0))
    root = state.roots_to_expand()[0]
    trouble = state.take(Answer("replies", 200, b'{"code": -1, "msg": "x"}', root))
    assert trouble.reason == "api_error" and root not in state.roots_to_expand()
    assert root in state.incomplete_reason(None)


def test_answer_urls() -> None:
    assert Answer.of("http://x/api/sns/web/v2/comment/page?note_id=1", 200, b"").kind == "page"
    reply = Answer.of("http://x/api/sns/web/v2/comment/sub/page?root_comment_id=abc&x=1", 200, b"")
    assert reply.kind == "replies" and reply.root_comment_id == "abc"
    bad = Answer.of("http://x/api/sns/web/v2/comment/sub/page?root_comment_id=%24x", 200, b"")
    assert bad.root_comment_id is None
    assert Answer.of("http://x/api/sns/web/v1/feed", 200, b"") is None


def test_only_an_exact_count_can_say_a_thread_is_unchanged() -> None:
    note = make_note(1)
    note.interact = NoteInteract(comments=342, raw={"comments": "342"})
    assert exact_count(note) == 342
    note.interact = NoteInteract(comments=100, raw={"comments": "100+"})
    assert exact_count(note) is None  # "100+" may hide new comments
    note.interact = NoteInteract(comments=12000, raw={"comments": "1.2万"})
    assert exact_count(note) is None


def test_thread_unchanged_rule() -> None:
    limits = CommentLimits(None, None)
    stored = {"comments_complete": True, "comments_crawled": {
        "note_count": 12, "wanted_comments": None, "wanted_replies": None}}  # fmt: skip
    assert thread_unchanged(stored, 12, limits)
    assert not thread_unchanged(stored, 13, limits)  # the count moved
    assert not thread_unchanged(stored, 12, CommentLimits(5, None))  # asked for otherwise
    assert not thread_unchanged({**stored, "comments_complete": False}, 12, limits)
    assert not thread_unchanged(None, 12, limits) and not thread_unchanged(stored, None, limits)


def test_a_bucketed_count_holds_its_thread_for_comments_refresh() -> None:
    """Issue 14: "1.2万" may hide new comments, so it never proved a thread unchanged and
    every re-crawl read 12,000 comments again. The same bucket now holds for
    COMMENTS_REFRESH after a complete read; a moved bucket, or an older read, is read."""
    limits = CommentLimits(None, None)
    read_at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    stored = {"comments_complete": True, "comments_crawled": {
        "note_count": None, "shown": "1.2万", "at": read_at.replace(tzinfo=None),
        "wanted_comments": None, "wanted_replies": None}}  # fmt: skip
    day = timedelta(days=1)
    soon, later = read_at + timedelta(hours=3), read_at + timedelta(hours=25)
    assert thread_unchanged(stored, None, limits, shown="1.2万", now=soon, refresh=day)
    assert not thread_unchanged(stored, None, limits, shown="1.3万", now=soon, refresh=day)
    assert not thread_unchanged(stored, None, limits, shown="1.2万", now=later, refresh=day)
    assert not thread_unchanged(stored, None, limits, shown="1.2万", now=soon)  # refresh 0
    assert not thread_unchanged(
        stored, None, CommentLimits(5, None), shown="1.2万", now=soon, refresh=day
    )
    old = {**stored, "comments_crawled": {**stored["comments_crawled"], "shown": None}}
    assert not thread_unchanged(old, None, limits, shown="1.2万", now=soon, refresh=day)


def test_the_read_records_the_count_as_shown() -> None:
    note = make_note(1)
    note.interact = NoteInteract(comments=12000, raw={"comments": "1.2万"})
    assert shown_count(note) == "1.2万" and exact_count(note) is None
    note.interact = NoteInteract(comments=0, raw={})
    assert shown_count(note) is None


async def test_pacer_spaces_after_a_captcha_and_relaxes() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(monotonic=lambda: now[0], sleep=sleep)
    await pacer.turn()
    assert slept == []
    pacer.captcha(5.0)
    assert pacer.holding and pacer.spacing == MIN_SPACING
    await pacer.turn()
    await pacer.turn()
    assert slept[0] == 5.0 and slept[1] == pytest.approx(MIN_SPACING)
    for _ in range(60):
        pacer.relax()
    assert pacer.spacing == 0.0


def test_hostile_keys_in_kept_entries_are_counted_not_read() -> None:
    answer = json.loads(page_answer(0).body)
    entries = answer["data"]["comments"]
    inline = 0
    for entry in entries:
        entry["$where"] = "sleep(1000)"
        entry["user_info"]["a.b"] = {"$gt": ""}  # two: the dotted key and the operator
        for reply in entry["sub_comments"]:
            reply["x\x00y"] = 1
            inline += 1
    state = ThreadState(NOTE.note_id, CommentLimits(None, None))
    assert state.take(Answer("page", 200, json.dumps(answer).encode())) is None
    assert inline > 0  # else the inline replies prove nothing
    assert state.ignored == {"hostile_key": 3 * len(entries) + inline}  # each counted once
    clean = ThreadState(NOTE.note_id, CommentLimits(None, None))
    clean.take(page_answer(0))
    assert state.comments() == clean.comments() and not clean.ignored
    assert not state.skipped  # nothing left out: the thread is not incomplete for them


async def test_a_comment_captcha_pauses_the_engine_like_a_request_captcha() -> None:
    crawler = crawler_with(XHS_BASE_URL="http://site.test", ANTIBOT_COOLDOWN=0.2)
    pause = AntiBotPause.of(crawler)
    assert AntiBotPause.of(crawler) is pause  # one per crawler
    pacer = Pacer(pause)
    pacer.captcha(0.2)
    assert crawler.engine.paused and pacer.spacing == MIN_SPACING
    assert crawler.stats.get_value("antibot/pauses") == 1
    assert crawler.stats.get_value("antibot/pauses/comments") == 1
    await asyncio.sleep(0.1)
    pacer.captcha(0.2)  # a second captcha extends the same pause
    assert crawler.stats.get_value("antibot/pauses") == 1
    assert crawler.stats.get_value("antibot/pauses/comments") == 2
    await asyncio.sleep(0.15)
    assert crawler.engine.paused  # 0.25 s after the first captcha, 0.15 s after the second
    await asyncio.sleep(0.15)
    assert not crawler.engine.paused and not pacer.holding


async def test_a_request_captcha_quiets_the_comment_pages() -> None:
    crawler = crawler_with(XHS_BASE_URL="http://site.test", ANTIBOT_COOLDOWN=0.3)
    middleware = AntiBotMiddleware.from_crawler(crawler)
    pacer = Pacer(AntiBotPause.of(crawler))
    request = Request("http://site.test/explore/685e9b3d00000000240089a5")
    response = TextResponse(request.url, status=461, body=b"{}", request=request)
    started = time.monotonic()
    middleware.process_response(request, response)
    assert crawler.engine.paused and pacer.holding
    await pacer.turn()  # a comment page's next action waits for the pause's end
    assert time.monotonic() - started >= 0.29
    assert crawler.stats.get_value("antibot/pauses/http") == 1
    assert pacer.spacing == 0.0  # the pages' own spacing is not widened by it
    await asyncio.sleep(0.05)
    assert not crawler.engine.paused
