"""Edge cases of the note mapping, on small hand-made cards and pages."""

from __future__ import annotations

from typing import Any

import pytest

from crawler.parsing.errors import (
    Captcha,
    LoginRequired,
    NoteGone,
    ResponseMalformed,
    XsecTokenInvalid,
)
from crawler.parsing.notes import (
    note_from_api_card,
    parse_note_page,
)
from crawler.parsing.state import extract_initial_state
from crawler.urls import note_id_from_url, note_url, site_base
from tests.parsing.samples import NOTE_01_URL, PAGE_01, real_bytes

NOTE_ID = "0123456789abcdef01234567"
URL = f"https://www.xiaohongshu.com/explore/{NOTE_ID}"


def card(**fields: Any) -> dict[str, Any]:
    return {"note_id": NOTE_ID, "type": "normal", "title": "t", **fields}


def test_landing_on_a_captcha_or_login_or_error_url() -> None:
    page = real_bytes(PAGE_01)
    captcha = "https://www.xiaohongshu.com/website-login/captcha?redirectPath=x&verifyType=102"
    with pytest.raises(Captcha, match="landed on the captcha page"):
        parse_note_page(page, captcha, note_id=NOTE_ID)
    with pytest.raises(LoginRequired, match=f"note {NOTE_ID}: landed on the login page"):
        parse_note_page(page, "https://www.xiaohongshu.com/login?redirectPath=x", note_id=NOTE_ID)
    gone = "https://www.xiaohongshu.com/404?error_code=-510001&error_msg=gone"
    with pytest.raises(NoteGone, match="error_code=-510001"):
        parse_note_page(page, gone, note_id=NOTE_ID)
    with pytest.raises(XsecTokenInvalid, match="error_code=300017"):
        parse_note_page(page, gone.replace("-510001", "300017"), note_id=NOTE_ID)


def test_card_must_be_an_object() -> None:
    with pytest.raises(ResponseMalformed, match="note_card is a list"):
        note_from_api_card([], note_id=NOTE_ID, xsec_token=None, url=URL)  # type: ignore[arg-type]


def test_images_without_urls_are_skipped_and_tokens_come_from_any_url() -> None:
    images = [
        {"height": 10, "width": 20},  # search cards: sizes only
        "not an image",
        {
            "url_default": "https://host/a/../b!style",
            "url_pre": "http://h/202507162131/0123/tok_1!nd_prv",
            "width": 1.0,
            "height": "30",
            "live_photo": True,
        },
    ]
    note = note_from_api_card(card(image_list=images), note_id=NOTE_ID, xsec_token="x", url=URL)
    assert len(note.images) == 1
    image = note.images[0]
    assert image.url == "https://host/a/../b!style"
    assert image.original_urls == [
        "https://sns-img-bd.xhscdn.com/tok_1",
        "https://ci.xiaohongshu.com/tok_1",
    ]
    assert (image.width, image.height, image.live_photo) == (1, 30, True)


def test_video_duration_sources_and_missing_streams() -> None:
    def video_of(video: dict[str, Any]) -> Any:
        note = note_from_api_card(
            card(type="video", video=video), note_id=NOTE_ID, xsec_token=None, url=URL
        )
        return note.video

    stream = {"h264": [{"master_url": "m", "duration": 12500, "width": 1, "height": 2}]}
    assert video_of({"media": {"stream": stream}}).duration == 12.5
    assert video_of({"media": {"stream": stream, "video": {"duration": 13}}}).duration == 13.0
    assert video_of({"capa": {"duration": 11}, "media": {"stream": stream}}).duration == 11.0
    bare = video_of({"capa": {"duration": -1}})
    assert (bare.url, bare.candidates, bare.duration, bare.width) == (None, [], None, None)
    codecs = {
        "av1": [{"master_url": "a1"}],
        "h265": ["junk", {"master_url": "h5", "backup_urls": ["h5", "b5", 7]}],
        "h264": [{"master_url": "h4"}],
    }
    assert video_of({"media": {"stream": codecs}}).candidates == ["h4", "h5", "b5", "a1"]
    # A video-typed note without a video object, and an image note with one.
    assert video_of(None) is None  # type: ignore[arg-type]
    image_note = note_from_api_card(
        card(type="normal", video={"consumer": {"origin_video_key": "k"}}),
        note_id=NOTE_ID,
        xsec_token=None,
        url=URL,
    )
    assert image_note.video is None


def test_users_tags_times_and_counts_tolerate_odd_values() -> None:
    note = note_from_api_card(
        card(
            user={"nickname": "no id"},
            tag_list=[],
            desc="文字 #第一[话题]# 和 #第二[话题]##第一[话题]#",
            time=1234,  # not epoch milliseconds
            last_update_time="1751030600000",
            interact_info={"liked_count": 5, "comment_count": None, "share_count": "1万+"},
            ip_location="",
        ),
        note_id=NOTE_ID,
        xsec_token=None,
        url=URL,
    )
    assert note.user is None
    assert note.tags == ["第一", "第二"]  # inline topics when there is no tag list
    assert note.published_at is None
    assert note.updated_at is not None and note.updated_at.year == 2025
    assert (note.interact.liked, note.interact.comments, note.interact.shares) == (5, None, 10000)
    assert note.interact.raw == {
        "liked": "5",
        "collected": None,
        "comments": None,
        "shares": "1万+",
    }
    assert note.ip_location is None
    assert note.xsec_token is None and note.url == URL
    user = note_from_api_card(
        card(user={"userId": "u1", "nickName": "n", "images": "a"}),
        note_id=NOTE_ID,
        xsec_token=None,
        url=URL,
    ).user
    assert user is not None and (user.user_id, user.nickname, user.avatar) == ("u1", "n", "a")


def test_api_answer_with_a_non_numeric_code() -> None:
    with pytest.raises(ResponseMalformed, match="code is 'x', not a number"):
        parse_note_page('{"code":"x","msg":"?"}', URL)


def test_note_ids_and_canonical_urls() -> None:
    assert note_id_from_url(NOTE_01_URL) == "685e9b3d00000000240089a5"
    assert note_id_from_url(f"https://www.xiaohongshu.com/discovery/item/{NOTE_ID}?a=b") == NOTE_ID
    assert note_id_from_url(f"https://www.xiaohongshu.com/user/profile/u123/{NOTE_ID}") == NOTE_ID
    assert (
        note_id_from_url("https://www.xiaohongshu.com/user/profile/5a177936e8ac2b535e9441b3")
        is None
    )
    assert note_id_from_url("https://[broken/explore/" + NOTE_ID) is None
    assert note_id_from_url(None) is None
    assert note_url(site_base("http://127.0.0.1:9/x?y"), NOTE_ID, "A+B/C=") == (
        f"http://127.0.0.1:9/explore/{NOTE_ID}?xsec_token=A%2BB%2FC%3D"
    )
    assert note_url(site_base("not a url"), NOTE_ID, None) == f"/explore/{NOTE_ID}"


def test_ref_with_only_a_raw_value() -> None:
    assert extract_initial_state('{"a":{"__v_isRef":true,"_rawValue":[1]}}') == {"a": [1]}
