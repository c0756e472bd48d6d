"""Every file in tests/bad_inputs/files/ through the parser, plus generated extremes.

``page_*`` files go through ``parse_note_page`` (as the body answered for the note
URL below), ``listing_*`` files through ``parse_listing``. Each gives its typed error
whose message names the problem, or a correct item. A file without an expectation
here fails the suite, so the corpus and the table cannot drift apart.

The generated cases start from the real raw state 02b (origin:
tests/data/xhs-real/MANIFEST.md).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from crawler.core.items import NoteItem
from crawler.parsing import errors
from crawler.parsing.listing import parse_listing
from crawler.parsing.notes import note_from_api_card, parse_note_page
from crawler.parsing.signals import classify_response
from crawler.parsing.state import DEFAULT_MAX_PAGE_BYTES
from tests.parsing.samples import NOTE_01_ID, NOTE_01_URL, STATE_02B, real_text

FILES = Path(__file__).resolve().parent / "files"
NOTE_ID = "6650a1b2000000001e01f0c3"
NOTE_URL = f"https://www.xiaohongshu.com/explore/{NOTE_ID}?xsec_token=FROMURL&xsec_source=pc_feed"

# file → (expected error, text its message must contain)
ERRORS: dict[str, tuple[type[errors.ParseError], str]] = {
    "page_empty.html": (errors.EmptyPage, "empty page (0 bytes"),
    "page_whitespace_only.html": (errors.EmptyPage, "empty page (9 bytes"),
    "page_random_bytes.bin": (errors.BinaryContent, "NUL bytes"),
    "page_gzip_not_decompressed.bin": (errors.BinaryContent, "gzip-compressed data"),
    "page_jpeg_body.jpg": (errors.BinaryContent, "a JPEG image"),
    "page_truncated_download.html": (errors.StateMalformed, "truncated"),
    "page_truncated_state_closed.html": (errors.StateMalformed, "truncated"),
    "page_raw_script_close_in_title.html": (errors.StateMalformed, "a string runs to the end"),
    "page_unbalanced_extra_brace.html": (errors.StateMalformed, "Extra data"),
    "page_unbalanced_missing_brace.html": (errors.StateMalformed, "the literal is truncated"),
    "page_unbalanced_brackets.html": (errors.StateMalformed, "Expecting ',' delimiter"),
    "page_nan_token.html": (errors.StateMalformed, '"lastUpdateTime":NaNx'),
    "page_lowercase_nan.html": (errors.StateMalformed, '"lastUpdateTime":nan'),
    "page_bare_identifier.html": (errors.StateMalformed, '"ipLocation":someVar'),
    "page_undefined_as_key.html": (errors.StateMalformed, 'undefined:"上海"'),
    "page_state_not_object.html": (errors.StateMalformed, "is a str, not an object"),
    "page_state_without_the_note.html": (
        errors.NoteNotFound,
        f"noteDetailMap has no note {NOTE_ID} (entries: 6650a1b2000000001e01ffff)",
    ),
    "page_state_empty_detail_map.html": (errors.NoteNotFound, "entries: none"),
    "page_state_without_note_store.html": (errors.NoteNotFound, "no `note` store"),
    "page_no_state_no_meta.html": (errors.StateMissing, "no og:* note meta tags"),
    "page_captcha.html": (errors.Captcha, "/website-login/captcha"),
    "page_login_required.html": (errors.LoginRequired, "登录后查看"),
    "page_xsec_300017.html": (errors.XsecTokenInvalid, "访问链接异常"),
    "page_note_gone_in_state.html": (errors.NoteGone, "code -510001"),
    "page_note_gone_300031.html": (errors.NoteGone, "当前笔记暂时无法浏览"),
    "page_api_code_-100.json": (errors.LoginRequired, "code -100"),
    "page_api_code_300011.json": (errors.AccountFlagged, "code 300011"),
    "page_api_code_300012.json": (errors.IpBlocked, "code 300012"),
    "page_api_code_-1.json": (errors.SignatureRejected, "signature"),
    "page_api_code_-510000.json": (errors.NoteGone, "code -510000"),
    "page_api_code_300017.json": (errors.XsecTokenInvalid, "xsec_token"),
    "listing_api_code_-100.json": (errors.LoginRequired, "code -100"),
    "listing_api_code_300011.json": (errors.AccountFlagged, "code 300011"),
    "listing_api_code_300012.json": (errors.IpBlocked, "code 300012"),
    "listing_api_code_-1.json": (errors.SignatureRejected, "signature"),
    "listing_api_code_-510000.json": (errors.NoteGone, "code -510000"),
    "listing_api_code_300017.json": (errors.XsecTokenInvalid, "code 300017"),
    "listing_unknown_code.json": (errors.ApiError, "code 300099"),
    "listing_html_instead_of_json.html": (errors.ResponseMalformed, "not JSON"),
    "listing_truncated_json.json": (errors.ResponseMalformed, "Unterminated string"),
    "listing_data_missing.json": (errors.ResponseMalformed, "no data object"),
    "listing_items_not_a_list.json": (errors.ResponseMalformed, "neither items[] nor notes[]"),
}


def _check_hostile(note: NoteItem) -> None:
    """Hostile text is data: kept verbatim, no path or query semantics applied."""
    assert note.title == "../../etc/passwd"
    assert note.desc == (
        '{"$where": "sleep(5000)"} \u202eevil\u202c zero\u200bwidth\u200d\ufeff; DROP TABLE notes; --'
    )
    assert note.tags == ["$gt", "a.b.c", "..\\..\\windows"]
    assert note.user is not None
    assert note.user.user_id == "$ne"
    assert note.user.nickname == "\u200f\u05e9\u05dc\u05d5\u05dd\u200e مرحبا"
    assert note.user.avatar == "javascript:alert(1)"
    assert note.ip_location == "<script>alert(1)</script>"


def _check_undefined_words(note: NoteItem) -> None:
    assert note.title == "undefined"
    assert note.desc == '"undefined" and undefinedness, not undefined'
    assert note.ip_location is None  # the bare `undefined` value
    assert note.user is not None and note.user.nickname == "作者"


def _check_og_only(note: NoteItem) -> None:
    assert note.title == "只有 og & meta"
    assert note.tags == ["标签一", "标签二"]
    assert note.desc == "描述"
    assert [image.original_urls[0] for image in note.images] == [
        "https://sns-img-bd.xhscdn.com/1040g00831ogonly0001"
    ]
    assert (note.interact.liked, note.interact.collected, note.interact.comments) == (
        10000,
        5,
        None,
    )
    assert note.interact.raw["liked"] == "1w+"
    assert note.xsec_token == "FROMURL"


ITEMS: dict[str, Callable[[NoteItem], None]] = {
    "page_hostile_fields.html": _check_hostile,
    "page_undefined_words.html": _check_undefined_words,
    "page_og_meta_only.html": _check_og_only,
}


def _parse(name: str, body: bytes) -> object:
    if name.startswith("listing_"):
        return parse_listing(body)
    return parse_note_page(body, NOTE_URL)


def test_every_corpus_file_has_an_expectation() -> None:
    on_disk = {path.name for path in FILES.iterdir()}
    assert on_disk == set(ERRORS) | set(ITEMS)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_corpus_errors(name: str) -> None:
    expected, named = ERRORS[name]
    with pytest.raises(errors.ParseError) as caught:
        _parse(name, (FILES / name).read_bytes())
    assert type(caught.value) is expected, f"{name}: {type(caught.value).__name__}: {caught.value}"
    assert named in str(caught.value)
    assert caught.value.reason == expected.reason


@pytest.mark.parametrize("name", sorted(ITEMS))
def test_corpus_items(name: str) -> None:
    note = _parse(name, (FILES / name).read_bytes())
    assert isinstance(note, NoteItem)
    assert note.note_id == NOTE_ID
    ITEMS[name](note)


# --- generated extremes --------------------------------------------------------------------


def _note_page(state_text: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head><body>'
        f"<script>window.__SSR__=true</script><script>window.__INITIAL_STATE__={state_text}</script>"
        "</body></html>"
    )


@pytest.fixture(scope="module")
def huge_page() -> bytes:
    """A 20 MB page: the real state with a large feed store of copies of its note."""
    raw = real_text(STATE_02B)
    start = raw.index('{"comments"', raw.index('"noteDetailMap"'))
    entry = raw[start : raw.index(',"serverRequestInfo"')][:-1]  # {"comments":…,"note":{…}}
    copies = 20_000_000 // len(entry) + 1
    feed = '"bigFeed":[' + ",".join([entry] * copies) + "],"
    page = _note_page(raw.replace('{"global":', "{" + feed + '"global":', 1)).encode()
    assert len(page) > 20_000_000
    return page


def test_20_mb_page_is_over_the_default_limit(huge_page: bytes) -> None:
    with pytest.raises(errors.PageTooLarge) as caught:
        parse_note_page(huge_page, NOTE_01_URL)
    assert f"page of {len(huge_page)} bytes" in str(caught.value)
    assert str(DEFAULT_MAX_PAGE_BYTES) in str(caught.value)


def test_20_mb_page_parses_under_a_raised_limit(huge_page: bytes) -> None:
    note = parse_note_page(huge_page, NOTE_01_URL, max_bytes=64 * 1024 * 1024)
    assert note.note_id == NOTE_01_ID
    assert len(note.images) == 18
    assert note.interact.liked == 300


def _state_with_title(title: str) -> str:
    raw = real_text(STATE_02B)
    old = '"title":"◾️🟥 「空间结构」的秩序之美"'
    assert raw.count(old) == 1
    return raw.replace(
        old, '"title":' + json.dumps(title, ensure_ascii=False).replace("/", "\\u002F")
    )


@pytest.mark.parametrize(
    "title",
    [
        "标题" * 25_000 + " undefined " + "x" * 50_000,  # a 100 KB title
        "undefined",
        '"undefined"',
        "undefinedness of undefined",
        "\u202e\u200b\u200c\u200d\u2066rtl\u2069\ufeff",
        "../../etc/passwd",
        "$where",
        "</scr" + "ipt>",
        "",
    ],
    ids=[
        "100kb",
        "undefined",
        "quoted-undefined",
        "undefinedness",
        "rtl-zero-width",
        "path",
        "mongo-op",
        "script-close",
        "empty",
    ],
)
def test_hostile_titles_survive_verbatim(title: str) -> None:
    state = _state_with_title(title)
    assert parse_note_page(_note_page(state), NOTE_01_URL).title == title
    assert parse_note_page(state, NOTE_01_URL).title == title


def test_deeply_nested_state() -> None:
    with pytest.raises(errors.StateMalformed, match="nested too deeply"):
        parse_note_page(_note_page("[" * 100_000 + "]" * 100_000), NOTE_01_URL)


def test_truncated_anywhere_is_state_malformed_with_a_position() -> None:
    raw = real_text(STATE_02B).strip()
    rng = random.Random(1)
    for cut in sorted(rng.sample(range(1, len(raw) - 1), 60)):
        with pytest.raises(errors.StateMalformed) as caught:
            parse_note_page(_note_page(raw[:cut]), NOTE_01_URL)
        assert caught.value.position is not None and caught.value.position <= cut


def test_random_corruption_gives_an_item_or_a_typed_error() -> None:
    """No KeyError/TypeError/ValueError escapes: damage is a ParseError or harmless."""
    raw = real_text(STATE_02B)
    rng = random.Random(2)
    outcomes: set[str] = set()
    alphabet = '{}[]":,\\ undefinedNaN0123456789-ctru'
    for _ in range(150):
        chars = list(raw)
        for _ in range(rng.randint(1, 4)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        try:
            parse_note_page("".join(chars), NOTE_01_URL)
            outcomes.add("item")
        except errors.ParseError as exc:
            outcomes.add(exc.reason)
    assert "state_malformed" in outcomes and "item" in outcomes


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_binary_content(seed: int) -> None:
    body = random.Random(seed).randbytes(2048)
    with pytest.raises(errors.BinaryContent, match="binary body, not a page"):
        parse_note_page(body, NOTE_URL)


def test_api_codes_outside_the_table() -> None:
    with pytest.raises(errors.ApiError, match="code 123 msg='new'"):
        parse_note_page(b'{"code":123,"success":false,"msg":"new"}', NOTE_URL)
    with pytest.raises(errors.NoteNotFound, match="no note_card"):
        parse_note_page(b'{"code":0,"success":true,"msg":"","data":{"items":[]}}', NOTE_URL)


def _random_json(rng: random.Random, depth: int = 0) -> object:
    """Random JSON values biased towards the keys the parsers look at."""
    keys = [
        "code",
        "msg",
        "data",
        "items",
        "notes",
        "note_card",
        "id",
        "model_type",
        "xsec_token",
        "display_title",
        "type",
        "image_list",
        "info_list",
        "url",
        "video",
        "media",
        "stream",
        "h264",
        "master_url",
        "user",
        "user_id",
        "interact_info",
        "liked_count",
        "time",
        "tag_list",
    ]
    roll = rng.random()
    if depth < 5 and roll < 0.35:
        return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 6))}
    if depth < 5 and roll < 0.5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(
        [0, -1, -100, 300012, 1.5, True, None, "", "note", "video", "1w+", "x/y!z", [], {}]
    )


def test_random_api_shapes_give_results_or_typed_errors() -> None:
    """No KeyError/TypeError/AttributeError escapes from odd API answers."""
    rng = random.Random(3)
    outcomes: set[str] = set()
    for _ in range(3000):
        answer = _random_json(rng)
        for parse in (
            lambda a: parse_listing(a),  # type: ignore[arg-type]
            lambda a: note_from_api_card(a, note_id=NOTE_ID, xsec_token=None, url=NOTE_URL),  # type: ignore[arg-type]
            lambda a: parse_note_page(json.dumps(a), NOTE_URL),
        ):
            try:
                parse(answer)
                outcomes.add("ok")
            except errors.ParseError as exc:
                outcomes.add(exc.reason)
        classify_response(200, {}, json.dumps(answer).encode())  # must not raise
    assert "ok" in outcomes and "response_malformed" in outcomes
