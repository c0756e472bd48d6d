"""What people paste into -a urls= / -a note_ids= (crawler/spiders/inputs.py): each form,
each refusal with its reason, and the stored token of a known note (real Mongo wire)."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import AsyncMongoClient

from crawler.spiders.inputs import (
    HOW_TO_GET_A_TOKEN,
    NoteRef,
    Refused,
    ShortLink,
    fill_stored_tokens,
    note_from_redirect,
    parse_inputs,
)
from crawler.urls import find_url

NOTE = "685e9b3d00000000240089a5"
OTHER = "6a7073ae5fba32f673e6f24c"
HOSTS = ("xhslink.com", "127.0.0.1:9002")
SHARE = (
    "xx发布了一篇小红书笔记，快来看吧！ 😆 abc123 😆 http://xhslink.com/a/AbCdEf，"
    "复制本条信息，打开【小红书】App查看精彩内容！"
)


def parse(urls: str = "", note_ids: str = ""):
    return parse_inputs(urls, note_ids, short_hosts=HOSTS)


def test_share_text_yields_its_short_link() -> None:
    assert find_url(SHARE) == "http://xhslink.com/a/AbCdEf"
    inputs = parse(SHARE)
    assert inputs.short_links == [ShortLink("http://xhslink.com/a/AbCdEf", SHARE[:200])]
    assert inputs.refs == [] and inputs.refused == [] and inputs.usable


def test_share_text_whose_title_holds_ascii_commas_stays_one_entry() -> None:
    share = SHARE.replace("abc123", "Hello, world, again")
    inputs = parse(f"{share},{NOTE}")
    assert inputs.short_links == [ShortLink("http://xhslink.com/a/AbCdEf", share[:200])]
    assert inputs.refs == [NoteRef(NOTE, None, "pc_feed", "note_id")]
    assert inputs.refused == []


def test_text_without_a_url_is_refused_once_and_the_entries_after_it_stand() -> None:
    inputs = parse(f"not a url, nor this,https://www.xiaohongshu.com/explore/{NOTE},javascript:x")
    assert [r.entry for r in inputs.refused] == ["not a url, nor this", "javascript:x"]
    assert inputs.refs == [NoteRef(NOTE, None, None, "url")]


def test_share_text_around_a_note_url() -> None:
    text = f"看看这个 https://www.xiaohongshu.com/explore/{NOTE}?xsec_token=AB12%3D&xsec_source=pc_search 好用"
    assert parse(text).refs == [NoteRef(NOTE, "AB12=", "pc_search", "url")]


def test_short_link_hosts_match_with_and_without_port() -> None:
    assert parse("http://127.0.0.1:9002/a/Q1").short_links[0].url == "http://127.0.0.1:9002/a/Q1"
    assert parse("https://xhslink.com/m/Zz").short_links[0].url == "https://xhslink.com/m/Zz"
    # the same path on a host that is not a share-link host is not followed
    refused = parse("http://127.0.0.1:9003/a/Q1").refused
    assert refused and "nor a share link on xhslink.com, 127.0.0.1:9002" in refused[0].message


def test_bare_ids_in_urls_are_note_ids() -> None:
    inputs = parse(f"{NOTE},{OTHER}:TOK_1-=")
    assert inputs.refs == [
        NoteRef(NOTE, None, "pc_feed", "note_id"),
        NoteRef(OTHER, "TOK_1-=", "pc_feed", "note_id"),
    ]


def test_note_url_forms() -> None:
    inputs = parse(
        f"https://www.xiaohongshu.com/discovery/item/{NOTE}?xsec_token=T1,"
        f"https://www.xiaohongshu.com/explore/{OTHER}"
    )
    assert inputs.refs == [NoteRef(NOTE, "T1", None, "url"), NoteRef(OTHER, None, None, "url")]


@pytest.mark.parametrize(
    ("urls", "note_ids", "needle"),
    [
        ("javascript:alert(1)", "", "urls= javascript: URLs are refused"),
        ("file:///etc/passwd", "", "urls= file: URLs are refused"),
        ("JavaScript:alert(1)", "", "javascript: URLs are refused"),
        ("not a url at all", "", "urls= no note URL, share link or note id in 'not a url at all'"),
        ("https://example.com/somewhere", "", "URL path is not /explore/<24-hex note id>"),
        ("", "../../x:y", "note_ids= note id must be 24 hex digits: '../../x:y'"),
        ("", f"{NOTE}:../../etc", "xsec_token has characters a token never has"),
        (f"{NOTE}:a b<c>", "", "xsec_token has characters a token never has"),
    ],
)
def test_refused_entries_say_why(urls: str, note_ids: str, needle: str) -> None:
    inputs = parse(urls, note_ids)
    assert not inputs.usable
    assert len(inputs.refused) == 1
    assert inputs.refused[0].reason == "bad_argument"
    assert needle in inputs.refused[0].message, inputs.refused[0].message


def test_short_link_redirects() -> None:
    link = ShortLink("http://xhslink.com/a/AbCdEf", "share text")
    target = note_from_redirect(
        link, 302, f"http://site/discovery/item/{NOTE}?xsec_token=TK&xsec_source=app_share"
    )
    assert target == NoteRef(NOTE, "TK", "app_share", "short_link")
    gone = note_from_redirect(link, 404, "")
    assert isinstance(gone, Refused) and gone.reason == "short_link_unresolved"
    assert "answered HTTP 404" in gone.message
    elsewhere = note_from_redirect(link, 302, "http://site/login")
    assert isinstance(elsewhere, Refused) and "led elsewhere" in elsewhere.message


def test_missing_token_uses_the_stored_one_else_says_how_to_get_one(
    mongo_uri: str, mongo_db_name: str, mongo_sync
) -> None:
    mongo_sync.notes.insert_one({"_id": NOTE, "xsec_token": "STORED", "title": "t"})
    refs = [
        NoteRef(NOTE, None, "pc_feed", "note_id"),
        NoteRef(OTHER, None, None, "url"),
        NoteRef("0" * 24, "GIVEN", None, "url"),
    ]

    async def run() -> tuple[list[NoteRef], list[Refused]]:
        client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
        try:
            return await fill_stored_tokens(client[mongo_db_name], refs)
        finally:
            await client.close()

    kept, refused = asyncio.run(run())
    assert kept == [NoteRef(NOTE, "STORED", "pc_feed", "note_id"), refs[2]]
    assert [(r.entry, r.reason) for r in refused] == [(OTHER, "xsec_token_missing")]
    assert HOW_TO_GET_A_TOKEN in refused[0].message
    # without a store every tokenless reference is refused, the others kept
    kept, refused = asyncio.run(fill_stored_tokens(None, refs))
    assert kept == [refs[2]] and len(refused) == 2
