"""Listing answers (tests/data/xhs-real/06, 07, 08, the profile state 09; 10 is not one) → refs.

Origins of the samples: tests/data/xhs-real/MANIFEST.md.
"""

from __future__ import annotations

import json

import pytest

from crawler.parsing.counts import parse_count
from crawler.parsing.errors import (
    AccountFlagged,
    ApiError,
    IpBlocked,
    LoginRequired,
    NoteGone,
    ParseError,
    ResponseMalformed,
    SignatureRejected,
    XsecTokenInvalid,
)
from crawler.parsing.listing import ListingRef, parse_listing, refs_from_profile_state
from crawler.parsing.signals import classify_response
from crawler.parsing.state import extract_initial_state
from tests.parsing.samples import (
    COLLECT_08,
    COMMENTS_10,
    PROFILE_09,
    SEARCH_06,
    USER_POSTED_07,
    real_bytes,
    real_json,
    real_text,
)


def test_search_notes_06_skips_query_suggestions() -> None:
    answer = real_json(SEARCH_06)
    assert sum(item["model_type"] == "rec_query" for item in answer["data"]["items"]) == 2
    refs = parse_listing(answer)
    assert len(refs) == 20
    assert all(ref.kind == "search" for ref in refs)
    assert all(ref.xsec_token for ref in refs)
    assert refs[0] == ListingRef(
        note_id="66696f98000000000d00f289",
        xsec_token="AB2ngtDge1SBYqsH8NXPJ25m5KaxP5SN8lmIUC6lh1Kpg=",
        title="",
        type="normal",
        kind="search",
    )
    assert refs[1].title == "客户说有需要再联系 别再回复好的‼️"
    assert refs[2].type == "video"
    assert parse_listing(real_text(SEARCH_06)) == refs
    assert parse_listing(real_bytes(SEARCH_06)) == refs


def test_user_posted_07_without_tokens() -> None:
    refs = parse_listing(real_json(USER_POSTED_07))
    assert len(refs) == 31
    assert refs[0].note_id == "62774f36000000000102e609"
    assert refs[0].title == "VSCO调色｜电影质感·天空色调"
    assert all(ref.xsec_token is None and ref.kind == "notes" for ref in refs)


def test_note_collect_page_08() -> None:
    refs = parse_listing(real_json(COLLECT_08))
    assert len(refs) == 10
    assert refs[0] == ListingRef(
        note_id="6624e7e100000000010332f2",
        xsec_token="AB2LTu6f4_DuLaBPs-jLYMBdA1UlKcUDVuF9Z7n7YrvNo=",
        title="自己在家生豆芽太有成就感了，自留老品种本地黄豆，传统豆芽做法纯天然好吃健康放心#",
        type="video",
        kind="notes",
    )


def test_profile_state_09_tabs() -> None:
    state = extract_initial_state(real_bytes(PROFILE_09))
    # This capture is the owner's "fav" tab: their own notes tab (0) is empty.
    assert refs_from_profile_state(state) == []
    refs = refs_from_profile_state(state, tabs=(1,))
    assert len(refs) == 10
    assert refs[0] == ListingRef(
        note_id="67150abc000000001402dbb4",
        xsec_token="ABMr5JZupI36kbU9s3WUbQL7Xurr5yE3KCmKVR6Sdaoc4=",
        title="矿泉水桶🐟更详细版16.8L开桶教程来啦~ ✅",
        type="video",
        kind="profile",
    )
    assert refs_from_profile_state(state, tabs=range(10)) == refs


def test_profile_refs_need_a_profile_state() -> None:
    with pytest.raises(ResponseMalformed, match=r"no user\.notes"):
        refs_from_profile_state({"note": {}})


def test_duplicates_are_dropped_keeping_the_first() -> None:
    note = {"note_id": "a" * 24, "xsec_token": "first", "display_title": "x", "type": "normal"}
    again = dict(note, xsec_token="second")
    refs = parse_listing({"code": 0, "data": {"notes": [note, {"no": "id"}, "junk", again]}})
    assert [(r.note_id, r.xsec_token) for r in refs] == [("a" * 24, "first")]


def test_empty_listing() -> None:
    assert (
        parse_listing({"code": 0, "success": True, "data": {"has_more": False, "items": []}}) == []
    )


@pytest.mark.parametrize(
    ("answer", "error", "named"),
    [
        (
            {"code": -100, "success": False, "msg": "登录已过期", "data": {}},
            LoginRequired,
            "code -100",
        ),
        (
            {"code": 300012, "success": False, "msg": "网络连接异常，请检查网络设置或重启试试"},
            IpBlocked,
            "code 300012",
        ),
        (
            {"code": 300011, "success": False, "msg": "当前账号存在异常，请切换账号后重试"},
            AccountFlagged,
            "code 300011",
        ),
        ({"code": -1, "success": False}, SignatureRejected, "signature"),
        ({"code": 300017, "msg": "访问链接异常"}, XsecTokenInvalid, "xsec_token"),
        ({"code": -510001, "msg": "笔记不存在"}, NoteGone, "deleted"),
        ({"code": 461, "msg": "?"}, ApiError, "unknown error code"),
        ({"success": False, "msg": "nope"}, ApiError, "success=false"),
        ({"code": "x"}, ResponseMalformed, "not a number"),
        ({"code": 0, "data": None}, ResponseMalformed, "no data object"),
        ({"code": 0, "data": {"cursor": ""}}, ResponseMalformed, "neither items"),
        ([1, 2], ResponseMalformed, "list, not an object"),
        ("{not json", ResponseMalformed, "not JSON"),
        (b"", ResponseMalformed, "not JSON"),
    ],
)
def test_error_answers_are_typed(answer: object, error: type[ParseError], named: str) -> None:
    with pytest.raises(error, match=named) as caught:
        parse_listing(answer)  # type: ignore[arg-type]
    if isinstance(answer, dict) and isinstance(answer.get("code"), int) and answer["code"] != 0:
        assert caught.value.code == answer["code"]


def test_error_message_quotes_the_sites_message() -> None:
    body = json.dumps({"code": 300012, "success": False, "msg": "网络连接异常"}, ensure_ascii=False)
    with pytest.raises(IpBlocked) as caught:
        parse_listing(body)
    assert "网络连接异常" in str(caught.value)
    assert caught.value.reason == "ip_blocked"


def test_comment_page_10_is_not_a_listing_nor_a_signal() -> None:
    """Comments are outside the note schema: the answer is refused by name, not misread."""
    answer = real_json(COMMENTS_10)
    with pytest.raises(ResponseMalformed, match=r"neither items.*keys: .*comments"):
        parse_listing(answer)
    assert classify_response(200, {}, real_bytes(COMMENTS_10)) is None
    counts = [comment["like_count"] for comment in answer["data"]["comments"]]
    counts += [sub["like_count"] for c in answer["data"]["comments"] for sub in c["sub_comments"]]
    assert counts and all(isinstance(parse_count(text), int) for text in counts)
    assert parse_count(answer["data"]["comments"][0]["sub_comment_count"]) == 32
