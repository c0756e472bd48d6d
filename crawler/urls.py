"""Note URLs: recognise, build and canonicalise them (pure functions)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

# Note pages: /explore/{id}, /discovery/item/{id}, /user/profile/{user}/{id}. Real ids
# are 24 hex digits; paths are matched a little more loosely so odd ids still count as
# notes, while `-a note_ids=` entries must be the real form.
_NOTE_PATH = re.compile(r"/(?:explore|discovery/item|user/profile/[^/]+)/([0-9A-Za-z]{16,32})/?$")
_NOTE_ID = re.compile(r"^[0-9a-fA-F]{24}$")
# xsec_token values are base64-like text; anything else in `ID:TOKEN` is refused.
_TOKEN = re.compile(r"^[0-9A-Za-z+/=_-]{1,512}$")
# A URL inside pasted text (the app's share text): http(s) and the ASCII characters a
# URL may hold; full-width punctuation (，) and emoji end it.
_URL_IN_TEXT = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+;=%]+", re.IGNORECASE)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


class BadNoteReference(ValueError):
    """A `-a urls=` or `-a note_ids=` entry that names no note."""


def note_id_from_url(url: str | None) -> str | None:
    """The note id of a note-page URL, or None for any other (or unparsable) URL."""
    if not url:
        return None
    try:
        path = urlsplit(url).path
    except ValueError:  # e.g. a stray "[" taken for an IPv6 host
        return None
    match = _NOTE_PATH.search(path)
    return match.group(1) if match else None


def note_created_at(note_id: str) -> datetime | None:
    """When a note was created, read from its id, or None for an id of another form.

    XHS note ids are MongoDB ObjectIds: the first 4 bytes are the creation time in UTC
    seconds (685e9b3d… is 2025-06-27, the day that note was published). Discovery uses
    it to skip notes older than `since=` without fetching their pages.
    """
    if not _NOTE_ID.match(note_id):
        return None
    return datetime.fromtimestamp(int(note_id[:8], 16), UTC)


def site_base(url: str) -> str:
    """`scheme://host[:port]` of `url`, or "" when it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def parse_note_url(url: str) -> tuple[str, str | None, str | None]:
    """(note_id, xsec_token, xsec_source) of a note URL; BadNoteReference otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadNoteReference(f"not an http(s) note URL: {url[:200]!r}")
    note_id = note_id_from_url(url.strip())
    if note_id is None:
        raise BadNoteReference(f"URL path is not /explore/<24-hex note id>: {url[:200]!r}")
    query = parse_qs(parts.query)
    token = query.get("xsec_token", [None])[0]
    source = query.get("xsec_source", [None])[0]
    return note_id, token, source


def parse_note_id_ref(ref: str) -> tuple[str, str | None]:
    """`ID` or `ID:TOKEN` from `-a note_ids=` → (note_id, token)."""
    note_id, _, token = ref.strip().partition(":")
    if not _NOTE_ID.match(note_id):
        raise BadNoteReference(f"note id must be 24 hex digits: {ref[:200]!r}")
    if token and not _TOKEN.match(token):
        raise BadNoteReference(f"xsec_token has characters a token never has: {ref[:200]!r}")
    return note_id.lower(), (token or None)


def looks_like_note_id(text: str) -> bool:
    """True for `ID` or `ID:…` whose ID is 24 hex digits (a bare id pasted into urls=)."""
    return bool(_NOTE_ID.match(text.strip().partition(":")[0]))


def url_scheme(text: str) -> str | None:
    """The scheme a text starts with (`javascript`, `file`, `https` …), lower-case, or None."""
    match = _SCHEME.match(text.strip())
    return match.group(1).lower() if match else None


def find_url(text: str) -> str | None:
    """The first http(s) URL inside pasted text (share text from the app), trailing
    sentence punctuation cut, or None."""
    match = _URL_IN_TEXT.search(text)
    return match.group(0).rstrip(".,;:!?'()[]") if match else None


def host_of(url: str) -> str:
    """`host[:port]` of a URL, lower-case ("" when unparsable)."""
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def is_short_link(url: str, hosts: tuple[str, ...] | list[str]) -> bool:
    """True when `url`'s host (with its port, or without) is one of the share-link hosts."""
    netloc = host_of(url)
    return netloc in hosts or netloc.partition(":")[0] in hosts


def note_url(
    base_url: str, note_id: str, xsec_token: str | None, xsec_source: str | None = None
) -> str:
    """The note page URL on `base_url` carrying the listing's token (and its source)."""
    query = {}
    if xsec_token:
        query["xsec_token"] = xsec_token
        if xsec_source:
            query["xsec_source"] = xsec_source
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{base_url.rstrip('/')}/explore/{note_id}{suffix}"


def split_arg(value: str | None) -> list[str]:
    """A comma-separated spider argument → its non-empty stripped entries."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
