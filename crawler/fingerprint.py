"""Request identity: a note is one note whatever listing token its URL carries.

The same note found by two keywords (or by two workers) comes with two different
`xsec_token`s, so URL-based fingerprints would fetch it twice. Both the local
duplicate filter (via REQUEST_FINGERPRINTER_CLASS) and the scrapy-redis one (which
hashes requests its own way) key note pages on the note id instead.
"""

from __future__ import annotations

import hashlib

from scrapy import Request
from scrapy.utils.request import RequestFingerprinter
from scrapy_redis.dupefilter import RFPDupeFilter

from crawler.urls import note_id_from_url


def note_fingerprint(request: Request) -> bytes | None:
    """The identity of a note-page GET, or None for other requests."""
    if request.method != "GET":
        return None
    note_id = note_id_from_url(request.url)
    if note_id is None:
        return None
    return hashlib.sha1(f"xhs-note:{note_id}".encode()).digest()


class NoteFingerprinter(RequestFingerprinter):
    def fingerprint(self, request: Request) -> bytes:
        return note_fingerprint(request) or super().fingerprint(request)


class RedisNoteDupeFilter(RFPDupeFilter):
    """scrapy-redis's shared duplicate filter with note-id identity."""

    def request_fingerprint(self, request: Request) -> str:
        fp = note_fingerprint(request)
        return fp.hex() if fp is not None else super().request_fingerprint(request)
