"""crawler/fingerprint.py: a note is one request whatever listing token its URL carries."""

from __future__ import annotations

from scrapy import Request

from crawler.fingerprint import NoteFingerprinter, RedisNoteDupeFilter, note_fingerprint

NOTE = "685e9b3d00000000240089a5"


def test_same_note_with_two_tokens_has_one_identity() -> None:
    a = Request(f"http://h/explore/{NOTE}?xsec_token=one")
    b = Request(f"http://h/explore/{NOTE}?xsec_token=two&xsec_source=pc_user")
    other = Request("http://h/search_result?keyword=x")
    fingerprinter = NoteFingerprinter()
    assert fingerprinter.fingerprint(a) == fingerprinter.fingerprint(b)
    assert fingerprinter.fingerprint(a) != fingerprinter.fingerprint(other)
    assert note_fingerprint(other) is None
    dupefilter = RedisNoteDupeFilter(server=None, key="k")
    assert dupefilter.request_fingerprint(a) == dupefilter.request_fingerprint(b)
    assert dupefilter.request_fingerprint(a) != dupefilter.request_fingerprint(other)


def test_only_note_page_gets_have_a_note_identity() -> None:
    page = f"http://h/explore/{NOTE}"
    assert note_fingerprint(Request(page)) is not None
    assert note_fingerprint(Request(page, method="POST")) is None
    assert note_fingerprint(Request("http://h/api/sns/web/v1/feed")) is None
    # Two different notes never share an identity.
    other = "685e9b3d00000000240089a6"
    assert note_fingerprint(Request(page)) != note_fingerprint(Request(f"http://h/explore/{other}"))
