"""Comment answers: the real fixtures 10 (comment/page) and 11 (comment/sub/page), and
hostile variants of them (origins: tests/data/xhs-real/MANIFEST.md)."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest

from crawler.core.items import CommentItem
from crawler.parsing.comments import (
    MAX_AT_USERS,
    MAX_CONTENT_CHARS,
    MAX_PICTURES,
    CommentPage,
    parse_comment_page,
    parse_reply_page,
)
from crawler.parsing.errors import (
    ApiError,
    CommentDuplicate,
    CommentMalformed,
    CommentWrongNote,
    IpBlocked,
    LoginRequired,
    ReplyOrphan,
    ResponseMalformed,
    SignatureRejected,
)
from tests.parsing.samples import COMMENTS_10, real_bytes, real_json

REPLIES_11 = "11_comment_sub_page_api_66f4f758_2024-09-27.json"
NOTE_10 = "6961f6a200000000220235f3"
NOTE_11 = "66f4f758000000001902f8e1"
ROOT_11 = "66f59e10000000000b023cb5"  # the request's root_comment_id
FETCHED = datetime(2026, 1, 13, 18, 0, tzinfo=UTC)


def answer_10() -> dict[str, Any]:
    return real_json(COMMENTS_10)


def answer_11() -> dict[str, Any]:
    return real_json(REPLIES_11)["response"]


def replies_11(answer: Any) -> Any:
    return parse_reply_page(answer, note_id=NOTE_11, root_comment_id=ROOT_11)


@pytest.fixture(scope="module")
def page_10() -> CommentPage:
    return parse_comment_page(real_bytes(COMMENTS_10), note_id=NOTE_10, fetched_at=FETCHED)


# --- fixture 10: comment/page -------------------------------------------------------------


def test_real_page_roots_replies_and_paging(page_10: CommentPage) -> None:
    assert page_10.skipped == []
    assert len(page_10.roots) == 10
    assert len(page_10.comments) == 15  # 10 roots + 5 inline replies
    assert page_10.cursor == "69649631000000000f01fc6f"
    assert page_10.has_more is True
    ids = [c.comment_id for c in page_10.comments]
    assert len(set(ids)) == len(ids)
    assert all(c.note_id == NOTE_10 and c.fetched_at == FETCHED for c in page_10.comments)


def test_real_page_counts_are_ints_with_raw_text(page_10: CommentPage) -> None:
    first = page_10.comments[0]
    assert first.comment_id == "6963650d000000001403e3ed"
    assert (first.like_count.value, first.like_count.raw) == (143, "143")
    assert first.reply_count is not None
    assert (first.reply_count.value, first.reply_count.raw) == (32, "32")
    for comment in page_10.comments:
        assert isinstance(comment.like_count.value, int)
        assert comment.like_count.raw == str(comment.like_count.value)
        if comment.root_comment_id is None:
            assert comment.reply_count is not None and isinstance(comment.reply_count.value, int)
        else:
            assert comment.reply_count is None


def test_real_page_fields(page_10: CommentPage) -> None:
    first = page_10.comments[0]
    assert first.content.startswith("浙江人去北京还好")
    assert first.user is not None
    assert (first.user.user_id, first.user.nickname) == ("5bcdbb244ae8bf0001a06f64", "蒙")
    assert first.user.avatar and first.user.avatar.startswith("https://sns-avatar-qc.xhscdn.com/")
    assert first.ip_location == "浙江"
    assert first.created_at == datetime(2026, 1, 11, 8, 53, 33, tzinfo=UTC)
    assert first.status == 0 and first.is_author is False
    assert first.target_comment is None and first.root_comment_id is None
    assert first.found_via == "comment_page"
    assert first.at_users == [] and first.pictures == [] and first.truncated == []
    # The viewer's own id (data.user_id) and the tokens are not stored on any comment.
    assert "5ceac80d0000000016011e02" not in json.dumps(
        [asdict(c) for c in page_10.comments], default=str
    )


def test_real_inline_replies_link_to_root_and_target(page_10: CommentPage) -> None:
    roots = {c.comment_id: c for c in page_10.roots}
    replies = [c for c in page_10.comments if c.root_comment_id is not None]
    assert len(replies) == 5
    for reply in replies:
        root = roots[reply.root_comment_id]  # type: ignore[index]
        assert reply.found_via == "inline_reply"
        assert reply.target_comment is not None
        # In this answer every inline reply answers its root directly.
        assert reply.target_comment.comment_id == root.comment_id
        assert reply.target_comment.user is not None and root.user is not None
        assert reply.target_comment.user.user_id == root.user.user_id
        # Each reply comes right after its root or a sibling.
        index = page_10.comments.index(reply)
        assert page_10.comments[index - 1].comment_id in (
            root.comment_id,
            *(r.comment_id for r in replies),
        )
    hidden = next(r for r in replies if r.comment_id == "696673d700000000040037f5")
    assert hidden.status == -2
    by_author = [r for r in replies if r.is_author]
    assert [r.comment_id for r in by_author] == ["69649c2c0000000008031731"]
    assert by_author[0].show_tags == ["is_author"]


def test_real_threads_say_where_replies_go_on(page_10: CommentPage) -> None:
    threads = {t.root_comment_id: t for t in page_10.threads}
    assert list(threads) == [c.comment_id for c in page_10.roots]
    first = threads["6963650d000000001403e3ed"]
    assert (first.cursor, first.has_more, first.inline) == ("6963b754000000000503ada1", True, 1)
    assert first.reply_count.value == 32
    empty = threads["6966853a000000000601fb9e"]
    assert (empty.cursor, empty.has_more, empty.inline, empty.reply_count.value) == (
        None,
        False,
        0,
        0,
    )
    assert sum(t.has_more for t in threads.values()) == 3


def test_page_of_another_note_skips_every_entry() -> None:
    page = parse_comment_page(answer_10(), note_id="0" * 24)
    assert page.comments == []
    assert len(page.skipped) == 10
    assert {type(e) for e in page.skipped} == {CommentWrongNote}
    assert NOTE_10 in str(page.skipped[0])


def test_without_note_id_entries_name_their_note() -> None:
    page = parse_comment_page(json.dumps(answer_10()))
    assert len(page.comments) == 15 and page.skipped == []
    answer = answer_10()
    del answer["data"]["comments"][0]["note_id"]
    page = parse_comment_page(answer)
    assert len(page.roots) == 9
    assert isinstance(page.skipped[0], CommentMalformed) and "names no note" in str(page.skipped[0])


# --- fixture 11: comment/sub/page ---------------------------------------------------------


def test_real_reply_page_links_root_and_target_chain() -> None:
    page = parse_reply_page(
        answer_11(), note_id=NOTE_11, root_comment_id=ROOT_11, fetched_at=FETCHED
    )
    assert page.skipped == []
    assert (page.cursor, page.has_more) == ("66f60da8000000001202e41e", True)
    assert len(page.replies) == 5
    assert all(r.root_comment_id == ROOT_11 and r.note_id == NOTE_11 for r in page.replies)
    assert all(r.found_via == "reply_page" and r.reply_count is None for r in page.replies)
    # The first reply answers a reply of an earlier page; each next one answers the one before.
    targets = [r.target_comment.comment_id for r in page.replies if r.target_comment]
    assert targets[0] == "66f60002000000000f00769e"
    assert targets[1:] == [r.comment_id for r in page.replies[:-1]]
    for reply, previous in zip(page.replies[1:], page.replies[:-1], strict=True):
        assert reply.target_comment is not None and reply.target_comment.user is not None
        assert previous.user is not None
        assert reply.target_comment.user.user_id == previous.user.user_id
    fourth = page.replies[3]
    assert (fourth.like_count.value, fourth.like_count.raw) == (16, "16")
    assert fourth.status == 3 and fourth.content.endswith("[笑哭R]")
    assert fourth.created_at == datetime.fromtimestamp(1727400997, UTC)


def test_reply_page_needs_real_ids() -> None:
    with pytest.raises(ValueError, match="root_comment_id"):
        parse_reply_page(answer_11(), note_id=NOTE_11, root_comment_id="")
    with pytest.raises(ValueError, match="note_id"):
        parse_reply_page(answer_11(), note_id="$ne", root_comment_id=ROOT_11)


# --- bad answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [(-100, LoginRequired), (300012, IpBlocked), (-1, SignatureRejected), (123456, ApiError)],
)
def test_code_not_zero_raises_its_typed_error(code: int, error: type[Exception]) -> None:
    answer = {"code": code, "success": False, "msg": "no", "data": {}}
    with pytest.raises(error) as caught:
        parse_comment_page(answer)
    assert caught.value.code == code  # type: ignore[attr-defined]
    with pytest.raises(error):
        replies_11(answer)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (real_bytes(COMMENTS_10)[:5000], "is not JSON"),
        (b"", "is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not"),
        ("[1, 2]", "is a list, not an object"),
        ({"code": "0", "data": {}}, "not a number"),
        ({"code": 0, "data": None}, "no data object"),
        ({"code": 0, "data": {"comments": {"a": 1}}}, "data.comments is a dict, not a list"),
        ({"code": 0, "data": {"comments": [], "cursor": "c" * 5000}}, "not a cursor"),
    ],
)
def test_malformed_answers_raise_response_malformed(body: Any, what: str) -> None:
    with pytest.raises(ResponseMalformed, match=what) as caught:
        parse_comment_page(body)
    assert caught.value.reason == "response_malformed"
    assert len(str(caught.value)) < 400


def test_success_false_without_code_is_an_api_error() -> None:
    with pytest.raises(ApiError, match="success=false"):
        parse_comment_page({"success": False, "msg": "busy"})


def test_empty_thread_is_a_page_without_comments() -> None:
    page = parse_comment_page(
        {"code": 0, "data": {"comments": [], "cursor": "", "has_more": False}}
    )
    assert (page.comments, page.cursor, page.has_more, page.skipped) == ([], None, False, [])


# --- bad entries: left out with a typed reason, the rest of the page kept -----------------


def _with_first(mutate: Any) -> CommentPage:
    answer = answer_10()
    mutate(answer["data"]["comments"])
    return parse_comment_page(answer, note_id=NOTE_10)


def test_reply_listed_at_top_level_is_an_orphan() -> None:
    def mutate(comments: list[Any]) -> None:
        reply = copy.deepcopy(comments[0]["sub_comments"][0])
        reply["id"] = "6963b754000000000503ffff"
        comments.append(reply)

    page = _with_first(mutate)
    assert len(page.comments) == 15
    [orphan] = page.skipped
    assert isinstance(orphan, ReplyOrphan) and orphan.reason == "reply_orphan"
    assert "6963b754000000000503ffff" in str(orphan) and "root unknown" in str(orphan)


def test_inline_reply_naming_another_root_is_an_orphan() -> None:
    def mutate(comments: list[Any]) -> None:
        comments[0]["sub_comments"][0]["root_comment_id"] = "69639a60000000000600ec06"

    page = _with_first(mutate)
    assert len(page.comments) == 14
    assert [type(e) for e in page.skipped] == [ReplyOrphan]
    assert "came in the thread of 6963650d000000001403e3ed" in str(page.skipped[0])


def test_reply_page_entry_of_another_root_or_itself_is_an_orphan() -> None:
    answer = answer_11()
    answer["data"]["comments"][0]["root_comment_id"] = "66f59e10000000000b02ffff"
    answer["data"]["comments"][1]["id"] = ROOT_11
    page = replies_11(answer)
    assert len(page.replies) == 3
    assert [type(e) for e in page.skipped] == [ReplyOrphan, ReplyOrphan]
    assert "its own root" in str(page.skipped[1])


def test_reply_of_another_note_is_skipped() -> None:
    answer = answer_11()
    answer["data"]["comments"][2]["note_id"] = "0" * 24
    page = replies_11(answer)
    assert len(page.replies) == 4
    assert isinstance(page.skipped[0], CommentWrongNote)


def test_duplicate_ids_keep_the_first() -> None:
    def mutate(comments: list[Any]) -> None:
        comments.append(copy.deepcopy(comments[0]))
        comments[1]["sub_comments"].append(copy.deepcopy(comments[1]["sub_comments"][0]))

    page = _with_first(mutate)
    assert len(page.comments) == 15
    assert [type(e) for e in page.skipped] == [CommentDuplicate, CommentDuplicate]
    assert page.skipped[0].reason == "comment_duplicate"


def test_long_comment_is_cut_and_marked() -> None:
    def mutate(comments: list[Any]) -> None:
        comments[0]["content"] = "长" * 100_000
        comments[0]["sub_comments"][0]["content"] = "ok \ud83d lone surrogate"

    page = _with_first(mutate)
    first = page.comments[0]
    assert len(first.content) == MAX_CONTENT_CHARS
    assert first.truncated == ["content"]
    assert page.comments[1].content == "ok \ufffd lone surrogate"
    assert page.comments[1].truncated == []
    small = parse_comment_page(answer_10(), max_content_chars=3)
    assert small.comments[0].content == "浙江人"


def test_hostile_keys_and_ids() -> None:
    def mutate(comments: list[Any]) -> None:
        comments[0].update({"$where": "1", "__proto__": {"polluted": 1}, "a.b": 2, "": 3})
        comments[0]["user_info"] = {"user_id": {"$ne": None}, "nickname": "x"}
        comments[1]["id"] = "$gt"
        comments[2]["id"] = "a" * 65
        comments[3]["id"] = None
        comments[4] = "not an object"
        comments[5]["content"] = {"$set": "x"}
        comments[6]["like_count"] = ["1"]
        comments[7]["sub_comments"] = "nope"

    page = _with_first(mutate)
    # 0 (its bad user dropped), 8 and 9 are kept; 1-7 are left out with their reasons.
    assert [c.comment_id for c in page.roots] == [
        "6963650d000000001403e3ed",
        "696673b600000000040033d8",
        "69649631000000000f01fc6f",
    ]
    assert all(isinstance(e, CommentMalformed) for e in page.skipped)
    assert len(page.skipped) == 7
    messages = " | ".join(str(e) for e in page.skipped)
    for expected in (
        "'$gt', not an id",
        "not an id",
        "has no id",
        "is a str, not an object",
        "content is a dict, not text",
        "like_count is a list, not text",
        "sub_comments is a str, not a list",
    ):
        assert expected in messages
    first = page.comments[0]
    assert first.user is None  # a user id that is an object names nobody
    stored = json.dumps(asdict(first), default=str)
    assert "$where" not in stored and "polluted" not in stored and "$ne" not in stored


def test_absurd_counts_keep_raw_text_only() -> None:
    def mutate(comments: list[Any]) -> None:
        comments[0]["like_count"] = "9" * 5000
        comments[1]["like_count"] = "1.2万"
        comments[2]["like_count"] = "赞"
        comments[3]["like_count"] = 10**30
        comments[4]["like_count"] = None
        comments[5]["sub_comment_count"] = "10+"

    page = _with_first(mutate)
    roots = page.roots
    assert roots[0].like_count.value is None and len(roots[0].like_count.raw or "") == 32
    assert (roots[1].like_count.value, roots[1].like_count.raw) == (12000, "1.2万")
    assert (roots[2].like_count.value, roots[2].like_count.raw) == (None, "赞")
    assert roots[3].like_count.value is None
    assert (roots[4].like_count.value, roots[4].like_count.raw) == (None, None)
    assert roots[5].reply_count is not None and roots[5].reply_count.value == 10


def test_mentions_and_pictures_are_read_and_capped() -> None:
    picture = {
        "url_pre": "http://sns-webpic-qc.xhscdn.com/202601/abc/1040g00831pre!nc_n_webp_prv_1",
        "url_default": "http://sns-webpic-qc.xhscdn.com/202601/abc/1040g00831dft!nc_n_webp_mw_1",
        "width": 1080,
        "height": "1440",
    }

    def mutate(comments: list[Any]) -> None:
        comments[0]["at_users"] = [
            {"user_id": "5bcdbb244ae8bf0001a06f64", "nickname": "蒙", "$x": 1},
            {"user_id": "../etc", "nickname": "bad id"},
            "not a user",
        ]
        comments[0]["pictures"] = [picture, {"width": 1}, {"url_default": "u" * 5000}]
        comments[1]["at_users"] = [{"user_id": f"{i:024x}", "nickname": "n"} for i in range(10_000)]
        comments[1]["pictures"] = [picture] * 1000

    page = _with_first(mutate)
    assert page.skipped == []
    first, second = page.roots[0], page.roots[1]
    assert [(u.user_id, u.nickname) for u in first.at_users] == [("5bcdbb244ae8bf0001a06f64", "蒙")]
    assert len(first.pictures) == 1
    assert first.pictures[0].url.endswith("1040g00831dft!nc_n_webp_mw_1")
    assert (first.pictures[0].width, first.pictures[0].height) == (1080, 1440)
    assert first.truncated == []
    assert len(second.at_users) == MAX_AT_USERS and len(second.pictures) == MAX_PICTURES
    assert second.truncated == ["at_users", "pictures"]


def test_items_are_plain_dataclasses_for_storage(page_10: CommentPage) -> None:
    reply = next(c for c in page_10.comments if c.root_comment_id)
    as_dict = asdict(reply)
    assert isinstance(reply, CommentItem)
    assert as_dict["target_comment"]["comment_id"] == reply.root_comment_id
    assert as_dict["like_count"] == {"value": reply.like_count.value, "raw": reply.like_count.raw}


# --- code -1: a signature verdict only on an HTTP 406 -------------------------------------


def test_code_minus_one_is_a_signature_verdict_only_on_406() -> None:
    answer = {"code": -1, "success": False, "msg": "评论不存在"}
    with pytest.raises(SignatureRejected):
        parse_comment_page(answer, http_status=406)
    with pytest.raises(ApiError, match="HTTP 200, code -1") as caught:
        parse_reply_page(answer, note_id=NOTE_11, root_comment_id=ROOT_11, http_status=200)
    assert caught.value.reason == "api_error" and caught.value.code == -1


# --- the sandbox's answers read back into its ground truth --------------------------------


def test_sandbox_thread_reads_back_exactly() -> None:
    """A large sandbox thread, paged as the sandbox site pages it (10 roots a page, the
    first reply inline, then reply pages from ``sub_comment_cursor``), parses into
    exactly ``Dataset.comments``: every comment once, linked to its root and target."""
    from sandbox.dataset import Dataset
    from sandbox.site.shapes import Urls, comment_item, reply_item

    urls = Urls("http://127.0.0.1:1", "http://127.0.0.1:2")
    dataset = Dataset(seed=1, size=200)
    note_id = dataset.note(20).note_id
    truth = dataset.comments(note_id)
    assert len(truth) > 300 and sum(len(c.replies) for c in truth) > 1000
    parsed: dict[str, CommentItem] = {}
    for start in range(0, len(truth), 10):
        chunk = truth[start : start + 10]
        answer = {
            "code": 0,
            "data": {
                "comments": [comment_item(c, urls) for c in chunk],
                "cursor": chunk[-1].comment_id,
                "has_more": start + 10 < len(truth),
            },
        }
        page = parse_comment_page(json.dumps(answer), note_id=note_id)
        assert page.skipped == []
        assert page.has_more == (start + 10 < len(truth))
        for thread in page.threads:
            root = next(c for c in chunk if c.comment_id == thread.root_comment_id)
            assert thread.reply_count.value == root.reply_count
            rest = root.replies[thread.inline :]
            assert thread.has_more == bool(rest)
            for at in range(0, len(rest), 10):
                replies = {
                    "code": 0,
                    "data": {"comments": [reply_item(r, urls) for r in rest[at : at + 10]]},
                }
                reply_page = parse_reply_page(
                    replies, note_id=note_id, root_comment_id=root.comment_id
                )
                assert reply_page.skipped == []
                page.comments.extend(reply_page.replies)
        for comment in page.comments:
            assert comment.comment_id not in parsed
            parsed[comment.comment_id] = comment
    expected = {c.comment_id: c for root in truth for c in (root, *root.replies)}
    assert parsed.keys() == expected.keys()
    for comment_id, spec in expected.items():
        item = parsed[comment_id]
        assert (item.root_comment_id, item.note_id) == (spec.root_id, spec.note_id)
        assert (item.target_comment.comment_id if item.target_comment else None) == spec.target_id
        if spec.target_user is not None:
            assert item.target_comment is not None and item.target_comment.user is not None
            assert item.target_comment.user.user_id == spec.target_user.user_id
        assert item.like_count.value == spec.like_count and item.like_count.raw == str(
            spec.like_count
        )
        assert (item.content, item.status, item.is_author) == (
            spec.content,
            spec.status,
            spec.is_author,
        )
        assert item.user is not None and item.user.user_id == spec.user.user_id
        assert [u.user_id for u in item.at_users] == [u.user_id for u in spec.at_users]
        assert [(p.width, p.height) for p in item.pictures] == [
            (p.width, p.height) for p in spec.pictures
        ]
        assert item.created_at is not None
        assert int(item.created_at.timestamp() * 1000) == spec.create_time
    assert any(c.is_author for c in parsed.values()) and any(c.pictures for c in parsed.values())
