"""Notes from every real sample in tests/data/xhs-real/ (origins: MANIFEST.md there).

01 is a full 2025 server-rendered page, 02b the raw state cut out of it, 04/05 are
``/feed`` API answers (2023 video, 2024 image), 09 a profile page's raw state.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, date, datetime

import pytest

from crawler.core.items import NoteItem
from crawler.parsing.errors import NoteNotFound, XsecTokenInvalid
from crawler.parsing.notes import note_from_api_card, note_from_state, parse_note_page
from crawler.parsing.state import extract_initial_state
from tests.parsing.samples import (
    FEED_IMAGE_05,
    FEED_VIDEO_04,
    NOTE_01_ID,
    NOTE_01_URL,
    PAGE_01,
    PROFILE_09,
    PROFILE_09_URL,
    STATE_02B,
    feed_card,
    real_bytes,
    real_text,
)

TITLE_01 = "◾️🟥 「空间结构」的秩序之美"


@pytest.fixture(scope="module")
def note_01() -> NoteItem:
    return parse_note_page(real_bytes(PAGE_01), NOTE_01_URL)


def test_full_page_2025_fields(note_01: NoteItem) -> None:
    note = note_01
    assert note.note_id == NOTE_01_ID
    assert note.source == "page"
    assert note.type == "normal"
    assert note.title == TITLE_01
    assert note.desc.startswith("⬛️图1- 12\n梅溪湖艺术博物馆")
    assert "搞的就是艺术" in note.tags
    assert len(note.tags) == 10
    assert note.ip_location == "湖南"
    assert note.published_at is not None and note.published_at.tzinfo is not None
    assert note.published_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert note.published_at.date() == date(2025, 6, 27)
    assert note.published_at == datetime(2025, 6, 27, 13, 23, 9, tzinfo=UTC)
    assert note.updated_at == note.published_at
    assert note.user is not None
    assert (note.user.user_id, note.user.nickname) == ("56512b71f53ee0700dafb990", "牙膏Soda")
    assert note.user.avatar and note.user.avatar.startswith(
        "https://sns-avatar-qc.xhscdn.com/avatar/"
    )
    assert note.video is None


def test_full_page_counts_are_ints_with_raw_text(note_01: NoteItem) -> None:
    interact = note_01.interact
    assert (interact.liked, interact.collected, interact.comments, interact.shares) == (
        300,
        111,
        46,
        69,
    )
    assert interact.raw == {"liked": "300", "collected": "111", "comments": "46", "shares": "69"}


def test_full_page_images(note_01: NoteItem) -> None:
    images = note_01.images
    assert len(images) == 18
    first = images[0]
    # The WB_DFT rendition, with `\u002F` decoded to `/`.
    assert first.url == (
        "http://sns-webpic-qc.xhscdn.com/202507162131/b6754c2e73439dd68f85c1db9338a6bd/"
        "1040g00831j82leaq340042pp2cln3ecgbftseh0!nd_dft_wlteh_jpg_3"
    )
    assert first.original_urls == [
        "https://sns-img-bd.xhscdn.com/1040g00831j82leaq340042pp2cln3ecgbftseh0",
        "https://ci.xiaohongshu.com/1040g00831j82leaq340042pp2cln3ecgbftseh0",
    ]
    assert (first.width, first.height) == (1920, 2560)
    assert all("!nd_dft_" in image.url for image in images)
    assert all(len(image.original_urls) == 2 for image in images)
    assert len({image.url for image in images}) == 18
    assert [i for i, image in enumerate(images) if image.live_photo] == [6, 10]
    assert all(image.status == "pending" for image in images)


def test_canonical_url_uses_the_notes_token_and_the_pages_host(note_01: NoteItem) -> None:
    assert note_01.xsec_token == "AB16ZRXJJfT-DQOjwWgEkKp3swcFqbqQxSntrMXcFJrtM="
    assert note_01.url == (
        f"https://www.xiaohongshu.com/explore/{NOTE_01_ID}"
        "?xsec_token=AB16ZRXJJfT-DQOjwWgEkKp3swcFqbqQxSntrMXcFJrtM%3D"
    )
    local = parse_note_page(real_bytes(PAGE_01), f"http://127.0.0.1:8123/explore/{NOTE_01_ID}")
    assert local.url.startswith(f"http://127.0.0.1:8123/explore/{NOTE_01_ID}?xsec_token=")


def test_text_and_bytes_give_the_same_note(note_01: NoteItem) -> None:
    assert asdict(parse_note_page(real_text(PAGE_01), NOTE_01_URL)) == asdict(note_01)


def test_raw_state_02b_parses_to_the_same_note(note_01: NoteItem) -> None:
    from_raw = parse_note_page(real_text(STATE_02B), NOTE_01_URL)
    assert asdict(from_raw) == asdict(note_01)
    assert asdict(
        note_from_state(extract_initial_state(real_bytes(STATE_02B)), NOTE_01_URL)
    ) == asdict(note_01)


def test_note_id_from_url_or_argument_or_the_page(note_01: NoteItem) -> None:
    state = extract_initial_state(real_bytes(PAGE_01))
    home = "https://www.xiaohongshu.com/explore"
    # No id anywhere: the page's current note.
    assert note_from_state(state, home).note_id == NOTE_01_ID
    assert note_from_state(state, home, note_id=NOTE_01_ID).title == TITLE_01
    other = "0123456789abcdef01234567"
    with pytest.raises(NoteNotFound, match=other) as caught:
        note_from_state(state, f"https://www.xiaohongshu.com/explore/{other}")
    assert caught.value.note_id == other
    assert NOTE_01_ID in str(caught.value)  # names what the map did hold


def test_redirect_away_from_the_note_is_an_xsec_problem() -> None:
    state = extract_initial_state(real_bytes(PROFILE_09))
    with pytest.raises(XsecTokenInvalid, match="redirected away"):
        note_from_state(state, "https://www.xiaohongshu.com/explore", note_id=NOTE_01_ID)


def test_og_fallback_when_the_state_is_missing(note_01: NoteItem) -> None:
    page = real_text(PAGE_01)
    stripped = re.sub(r"<script>window\.__INITIAL_STATE__=.*?</script>", "", page, flags=re.S)
    assert "__INITIAL_STATE__" not in stripped
    note = parse_note_page(stripped, NOTE_01_URL)
    assert note.note_id == NOTE_01_ID
    assert note.title == TITLE_01  # " - 小红书" suffix removed
    assert len(note.images) == 18
    assert [image.url for image in note.images] == [image.url for image in note_01.images]
    assert [image.original_urls for image in note.images] == [
        image.original_urls for image in note_01.images
    ]
    assert (note.interact.liked, note.interact.collected, note.interact.comments) == (300, 111, 46)
    assert note.interact.shares is None
    assert note.tags == note_01.tags
    assert note.desc.startswith("⬛️图1- 12 梅溪湖艺术博物馆")
    assert note.xsec_token == "FROMURL"
    assert note.published_at is None and note.user is None


def test_og_fallback_refuses_another_notes_page() -> None:
    page = re.sub(
        r"<script>window\.__INITIAL_STATE__=.*?</script>", "", real_text(PAGE_01), flags=re.S
    )
    other = "0123456789abcdef01234567"
    with pytest.raises(NoteNotFound, match=f"is note {NOTE_01_ID}.*not {other}"):
        parse_note_page(page, f"https://www.xiaohongshu.com/explore/{other}")


def test_feed_api_video_04() -> None:
    note_id = "64356527000000001303282b"
    note = note_from_api_card(
        feed_card(FEED_VIDEO_04),
        note_id=note_id,
        xsec_token="TOKEN04",
        url=f"https://www.xiaohongshu.com/explore/{note_id}",
    )
    assert note.source == "api"
    assert note.type == "video"
    assert note.title == "一镜到底｜无滤镜｜我的76平轻法式浪漫小家🏠"
    assert note.desc == "  "  # verbatim
    assert note.url == f"https://www.xiaohongshu.com/explore/{note_id}?xsec_token=TOKEN04"
    assert note.tags == ["法式装修", "家居版一张封神", "设计", "莫语沙发"]
    assert note.published_at == datetime(2023, 4, 11, 13, 48, 23, tzinfo=UTC)
    assert note.updated_at == datetime.fromtimestamp(1682675205, tz=UTC)
    assert (
        note.interact.liked,
        note.interact.collected,
        note.interact.comments,
        note.interact.shares,
    ) == (
        683,
        520,
        33,
        93,
    )
    assert note.user is not None and note.user.nickname == "迷路与鹿"
    # 2023 scenes: the CRD_WM_* rendition is shown.
    assert len(note.images) == 1
    assert note.images[0].url.endswith("!nd_whgt34_webp_wm_1")
    assert note.images[0].original_urls[0] == (
        "https://sns-img-bd.xhscdn.com/1000g0082dm179nugm0005n40ofvlikco2k2n448"
    )
    video = note.video
    assert video is not None
    assert (
        video.url
        == "https://sns-video-bd.xhscdn.com/pre_post/1000g0cg2avatijah40005n40ofvlikco6f35ot8"
    )
    assert video.candidates[0] == video.url
    assert video.candidates[1] == (
        "http://sns-video-hw.xhscdn.net/stream/110/258/01e43565256bbd500103700387709696d8_258.mp4"
    )
    assert len(video.candidates) == 6  # origin + master + 4 backups, no duplicates
    assert len(set(video.candidates)) == 6
    assert (video.width, video.height, video.duration) == (720, 1280, 122.0)


def test_feed_api_image_05() -> None:
    note_id = "66696f98000000000d00f289"
    note = note_from_api_card(
        feed_card(FEED_IMAGE_05),
        note_id=note_id,
        xsec_token="T",
        url="https://www.xiaohongshu.com/",
    )
    assert note.type == "normal" and note.video is None
    assert note.title == ""
    assert note.tags == ["客户资源", "精准客源", "电话销售", "销售"]
    assert note.ip_location is None
    assert note.published_at == datetime.fromtimestamp(1718185880, tz=UTC)
    assert note.images[0].url.endswith("!nd_dft_wlteh_webp_3")
    assert note.images[0].original_urls[1] == (
        "https://ci.xiaohongshu.com/1040g008313ul3ln81c6g5o8vavbg961a6bl9og0"
    )
    assert (note.interact.comments, note.interact.raw["comments"]) == (160, "160")


def test_page_and_api_shapes_map_to_the_same_schema() -> None:
    """The 02b page note rewritten in the API's snake_case gives the same item."""
    state = extract_initial_state(real_bytes(STATE_02B))
    page_note = state["note"]["noteDetailMap"][NOTE_01_ID]["note"]

    def snake(value: object) -> object:
        if isinstance(value, dict):
            return {
                re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", k).lower(): snake(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [snake(v) for v in value]
        return value

    card = snake(page_note)
    assert isinstance(card, dict) and "image_list" in card and "noteId" not in card
    token = page_note["xsecToken"]
    from_page = note_from_state(state, NOTE_01_URL)
    from_api = note_from_api_card(card, note_id=NOTE_01_ID, xsec_token=token, url=NOTE_01_URL)
    assert from_api.source == "api"
    from_api.source = "page"
    assert asdict(from_api) == asdict(from_page)


def test_card_for_another_note_is_refused() -> None:
    with pytest.raises(NoteNotFound, match="the card is note 64356527000000001303282b"):
        note_from_api_card(
            feed_card(FEED_VIDEO_04),
            note_id="ffffffffffffffffffffffff",
            xsec_token=None,
            url="https://x/",
        )


def test_profile_page_quirk_09() -> None:
    """Profile pages hold ``noteDetailMap = {"undefined": {... "note": {}}}``: no note."""
    raw = real_bytes(PROFILE_09)
    state = extract_initial_state(raw)
    assert list(state["note"]["noteDetailMap"]) == ["undefined"]
    assert state["note"]["currentNoteId"] is None  # a bare undefined
    with pytest.raises(NoteNotFound, match=r"noteDetailMap has no note.*entries: undefined"):
        parse_note_page(raw, PROFILE_09_URL)


def test_note_under_the_undefined_key_is_found_by_its_id() -> None:
    text = real_text(STATE_02B).replace(
        f'"noteDetailMap":{{"{NOTE_01_ID}":', '"noteDetailMap":{"undefined":'
    )
    assert '"noteDetailMap":{"undefined":' in text
    note = parse_note_page(text, NOTE_01_URL)
    assert note.note_id == NOTE_01_ID and len(note.images) == 18
    assert parse_note_page(text, "https://www.xiaohongshu.com/explore").note_id == NOTE_01_ID


def test_api_answer_fetched_as_a_page_gives_the_note() -> None:
    note_id = "64356527000000001303282b"
    note = parse_note_page(
        real_bytes(FEED_VIDEO_04), f"https://www.xiaohongshu.com/explore/{note_id}?xsec_token=Q"
    )
    assert note.note_id == note_id and note.source == "api" and note.xsec_token == "Q"


def test_entry_under_the_undefined_key_without_an_id_names_no_note() -> None:
    state = extract_initial_state(real_bytes(STATE_02B))
    note = state["note"]["noteDetailMap"].pop(NOTE_01_ID)["note"]
    del note["noteId"]
    state["note"]["noteDetailMap"]["undefined"] = {"note": note}
    state["note"]["currentNoteId"] = state["note"]["firstNoteId"] = None
    with pytest.raises(NoteNotFound, match=r"no note \(any\) \(entries: undefined\)"):
        note_from_state(state, "https://www.xiaohongshu.com/explore")
    # Under its own key it is found without a noteId field.
    state["note"]["noteDetailMap"] = {NOTE_01_ID: {"note": note}}
    assert note_from_state(state, "https://www.xiaohongshu.com/explore").note_id == NOTE_01_ID
