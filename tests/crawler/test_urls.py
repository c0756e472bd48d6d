"""crawler/urls.py: recognising, building and canonicalising note URLs (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawler.urls import (
    BadNoteReference,
    note_created_at,
    note_id_from_url,
    note_url,
    parse_note_id_ref,
    parse_note_url,
    site_base,
    split_arg,
)

NOTE = "685e9b3d00000000240089a5"


def test_parse_note_url_keeps_token_and_source() -> None:
    url = f"https://www.xiaohongshu.com/explore/{NOTE}?xsec_token=ABC%3D&xsec_source=pc_search"
    assert parse_note_url(url) == (NOTE, "ABC=", "pc_search")
    assert parse_note_url(f"https://www.xiaohongshu.com/discovery/item/{NOTE}") == (
        NOTE,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("ftp://x/explore/" + NOTE, "http(s)"),
        ("https://www.xiaohongshu.com/explore/123", "24-hex"),
        ("/explore/" + NOTE, "http(s)"),
        ("https://www.xiaohongshu.com/user/profile/abc", "24-hex"),
    ],
)
def test_bad_note_urls_name_the_problem(bad: str, words: str) -> None:
    with pytest.raises(BadNoteReference, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_note_url(bad)


def test_note_id_refs() -> None:
    assert parse_note_id_ref(f"{NOTE.upper()}:tok") == (NOTE, "tok")
    assert parse_note_id_ref(NOTE) == (NOTE, None)
    with pytest.raises(BadNoteReference, match="24 hex"):
        parse_note_id_ref("../../etc/passwd")


def test_note_url_round_trip() -> None:
    url = note_url("http://127.0.0.1:8800/", NOTE, "t+/=", "pc_user")
    assert parse_note_url(url) == (NOTE, "t+/=", "pc_user")
    assert note_url("http://h", NOTE, None, None) == f"http://h/explore/{NOTE}"
    assert split_arg(" a, ,b,") == ["a", "b"]


def test_note_creation_time_is_read_from_the_id() -> None:
    # the real 2025 page (tests/data/xhs-real/01_…): published 2025-06-27
    assert note_created_at(NOTE) == datetime(2025, 6, 27, 13, 23, 9, tzinfo=UTC)
    assert note_created_at("not-an-object-id") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://www.xiaohongshu.com/explore/{NOTE}?xsec_token=x", NOTE),
        (f"https://www.xiaohongshu.com/discovery/item/{NOTE}/", NOTE),
        (f"https://www.xiaohongshu.com/user/profile/5f00aa/{NOTE}", NOTE),
        ("https://www.xiaohongshu.com/explore", None),
        ("https://www.xiaohongshu.com/search_result?keyword=x", None),
        ("http://[::1/explore/" + NOTE, None),  # unparsable: no exception
        ("", None),
        (None, None),
    ],
)
def test_note_id_from_url_recognises_note_pages_only(url: str | None, expected: str | None) -> None:
    assert note_id_from_url(url) == expected


def test_site_base() -> None:
    assert site_base("http://127.0.0.1:8800/explore/x?y=1") == "http://127.0.0.1:8800"
    assert site_base("/explore/x") == ""
    assert site_base("http://[::1/x") == ""
