"""Comment threads through the sandbox's comment APIs: shapes of fixtures 10/11, paging
completeness against ``Dataset.comments``, and the gateway rules (406, xsec, 461, rotation)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sandbox import threads
from sandbox.dataset import REFERENCE_NOTE_ID, Dataset, NoteSpec
from sandbox.site import SiteServer
from sandbox.threads import DELETED_TEXT, MAX_REPLIES
from tests.site.helpers import fetch, signed

REAL = Path(__file__).resolve().parents[1] / "data" / "xhs-real"
PAGE = "/api/sns/web/v2/comment/page"
SUB = "/api/sns/web/v2/comment/sub/page"


def _real(name: str) -> dict[str, Any]:
    return json.loads(next(REAL.glob(name)).read_text())


def page_path(note: NoteSpec, cursor: str = "") -> str:
    query = {"note_id": note.note_id, "cursor": cursor, "top_comment_id": "",
             "image_formats": "jpg,webp,avif", "xsec_token": note.xsec_token}  # fmt: skip
    return f"{PAGE}?{urlencode(query)}"


def sub_path(note: NoteSpec, root_id: str, cursor: str) -> str:
    query = {"note_id": note.note_id, "root_comment_id": root_id, "num": 10, "cursor": cursor,
             "image_formats": "jpg,webp,avif", "top_comment_id": "",
             "xsec_token": note.xsec_token}  # fmt: skip
    return f"{SUB}?{urlencode(query)}"


def biggest(ds: Dataset) -> NoteSpec:
    live = [ds.note(i) for i in range(len(ds)) if not ds.is_deleted(i)]
    return max(live, key=lambda n: n.interact_exact["comments"])


def walk(site: SiteServer, note: NoteSpec) -> tuple[list[dict], dict[str, list[dict]], int]:
    """Every top-level comment and every reply, by cursors, as a crawler would."""
    tops: list[dict] = []
    replies: dict[str, list[dict]] = {}
    cursor, calls = "", 0
    while True:
        answer = signed(site, page_path(note, cursor))
        calls += 1
        assert answer.status == 200 and answer.json()["code"] == 0, answer.text
        data = answer.json()["data"]
        for c in data["comments"]:
            tops.append(c)
            got = replies.setdefault(c["id"], list(c["sub_comments"]))
            more, sub_cursor = c["sub_comment_has_more"], c["sub_comment_cursor"]
            while more:
                sub = signed(site, sub_path(note, c["id"], sub_cursor)).json()
                calls += 1
                assert sub["code"] == 0, sub
                got.extend(sub["data"]["comments"])
                more, sub_cursor = sub["data"]["has_more"], sub["data"]["cursor"]
        if not data["has_more"]:
            return tops, replies, calls
        cursor = data["cursor"]


def test_walking_the_cursors_returns_exactly_the_thread(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    note = biggest(ds)
    truth = ds.comments(note.note_id)
    assert len(truth) > 100 and max(len(c.replies) for c in truth) == MAX_REPLIES
    tops, replies, calls = walk(sandbox_site, note)
    assert [c["id"] for c in tops] == [c.comment_id for c in truth]
    for c in truth:
        assert [r["id"] for r in replies[c.comment_id]] == [r.comment_id for r in c.replies]
    every = [c["id"] for c in tops] + [r["id"] for rs in replies.values() for r in rs]
    assert len(every) == len(set(every))
    # the note's shown count is the visible comments and replies
    visible = sum(c.visible + c.reply_count for c in truth)
    assert visible == note.interact_exact["comments"]
    assert (
        sum(c["status"] == 0 for c in tops)
        + sum(r["status"] == 0 for rs in replies.values() for r in rs)
        == visible
    )
    for c, t in zip(tops, truth, strict=True):
        assert c["sub_comment_count"] == str(t.reply_count) and c["like_count"] == str(t.like_count)
    assert calls > len(tops) // 10


def test_answers_have_the_real_shapes() -> None:
    real_page = _real("10_comment_page_api_*.json")
    real_sub = _real("11_comment_sub_page_api_*.json")["response"]
    ds = Dataset(7, 300)
    with SiteServer(seed=7, notes=300) as site:
        note = biggest(ds)
        page = signed(site, page_path(note)).json()
        assert set(page) == set(real_page) and set(page["data"]) == set(real_page["data"])
        real_top = set().union(*(c.keys() for c in real_page["data"]["comments"]))
        real_reply = set().union(
            *(r.keys() for c in real_page["data"]["comments"] for r in c["sub_comments"]),
            *(r.keys() for r in real_sub["data"]["comments"]),
        )
        optional = {"pictures", "ip_location"}
        for c in page["data"]["comments"]:
            assert real_top - {"ip_location"} <= set(c) <= real_top | optional
            assert isinstance(c["like_count"], str) and isinstance(c["sub_comment_count"], str)
            for r in c["sub_comments"]:
                assert real_reply - {"ip_location"} <= set(r) <= real_reply | optional
                assert r["target_comment"]["id"] and r["target_comment"]["user_info"]["user_id"]
        root = next(c for c in page["data"]["comments"] if c["sub_comment_has_more"])
        sub = signed(site, sub_path(note, root["id"], root["sub_comment_cursor"])).json()
        assert set(sub["data"]) == set(real_sub["data"])
        assert {type(v) for v in (sub["data"]["cursor"], sub["data"]["has_more"])} == {str, bool}
        assert set(sub["data"]["comments"][0]["user_info"]) >= set(
            real_sub["data"]["comments"][0]["user_info"]
        )


def test_threads_carry_authors_mentions_pictures_emoji_topics_and_statuses() -> None:
    ds = Dataset(3, 400)
    every = [
        c
        for i in range(400)
        for top in ds.comments(ds.note(i).note_id)
        for c in (top, *top.replies)
    ]
    assert len(every) > 5000
    replies = [c for c in every if c.root_id]
    assert any(c.is_author for c in replies)
    assert all(c.target_id and c.target_user for c in replies)
    assert any(c.target_id != c.root_id for c in replies)  # replies to replies
    mentioned = [c for c in every if c.at_users]
    assert mentioned and all(f"@{c.at_users[0].nickname}" in c.content for c in mentioned)
    assert any(c.pictures for c in every)
    assert any("[话题]#" in c.content for c in every) and any("R]" in c.content for c in every)
    statuses = {c.status for c in every}
    assert statuses == {0, 1, 3}
    assert all(c.content == DELETED_TEXT for c in every if c.status == 1)
    assert any(not ds.comments(ds.note(i).note_id) for i in range(400))  # some have none
    for i in range(60):  # the shown count agrees with the thread
        note = ds.note(i)
        thread = ds.comments(note.note_id)
        assert sum(c.visible + c.reply_count for c in thread) == note.interact_exact["comments"]


def test_reference_thread_matches_its_pinned_count() -> None:
    ds = Dataset(1, 100)
    note = ds.note_by_id(REFERENCE_NOTE_ID)
    thread = ds.comments(REFERENCE_NOTE_ID)
    assert sum(c.visible + c.reply_count for c in thread) == note.interact_exact["comments"]
    assert ds.comments(REFERENCE_NOTE_ID, ds.today() + 5) == thread  # complete and fixed


def test_unsigned_wrong_token_unknown_root_and_no_session(sandbox_site: SiteServer) -> None:
    note = biggest(sandbox_site.dataset)
    unsigned = fetch(
        sandbox_site.url + page_path(note), headers={"Cookie": "a1=sandbox; web_session=sandbox"}
    )
    assert unsigned.status == 406 and unsigned.json() == {"code": -1, "success": False}
    root = sandbox_site.dataset.comments(note.note_id)[0].comment_id
    assert fetch(sandbox_site.url + sub_path(note, root, "")).status == 406
    bad = signed(sandbox_site, page_path(note).replace(note.xsec_token[:10], "ABxxxxxxxx"))
    assert bad.json()["code"] == 300017
    assert signed(sandbox_site, sub_path(note, "0" * 24, "")).json()["code"] == -1
    assert signed(sandbox_site, page_path(note), cookie=None).json()["code"] == -100
    assert signed(sandbox_site, page_path(note, cursor="nope")).json()["data"]["comments"] == []


def test_captcha_threshold_and_rotation_apply(make_site) -> None:
    site = make_site(captcha_threshold=3, captcha_window=60)
    note = biggest(site.dataset)
    statuses = [signed(site, page_path(note)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 461]
    site = make_site(rotate_after_calls=2)
    note = biggest(site.dataset)
    first = signed(site, page_path(note), version=1)
    root = first.json()["data"]["comments"][0]
    assert signed(site, sub_path(note, root["id"], ""), version=1).status == 200
    assert signed(site, sub_path(note, root["id"], ""), version=1).status == 406  # rotated
    assert signed(site, page_path(note)).status == 200  # signed with the new version
    assert site.stats()["comment_sub_api_signature_rejected"] == 1


def test_threads_are_built_lazily_so_a_big_dataset_stays_cheap() -> None:
    threads._final.cache_clear()
    started = time.perf_counter()
    ds = Dataset(11, 2000)
    counts = [ds.note(i).interact_exact["comments"] for i in range(2000)]
    assert time.perf_counter() - started < 30  # about 2 s here; no thread is written out
    assert threads._final.cache_info().currsize == 0 and max(counts) > 1000
    assert len(ds.comments(ds.note(counts.index(max(counts))).note_id)) > 100
    assert threads._final.cache_info().currsize == 1


def test_comment_pictures_are_served_by_the_sandbox_cdn(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    note, comment = next(
        (n, c)
        for n in (ds.note(i) for i in range(len(ds)) if not ds.is_deleted(i))
        for top in ds.comments(n.note_id)
        for c in (top, *top.replies)
        if c.pictures and c.root_id is None
    )
    page, cursor = None, ""
    while page is None:  # walk to the page that carries it
        data = signed(sandbox_site, page_path(note, cursor)).json()["data"]
        page = next((c for c in data["comments"] if c["id"] == comment.comment_id), None)
        cursor = data["cursor"]
    picture = page["pictures"][0]
    assert picture["url_default"].startswith(sandbox_site.cdn_url + "/comment/")
    answer = fetch(picture["url_default"])
    assert answer.status == 200 and answer.headers["content-type"] == "image/jpeg"
