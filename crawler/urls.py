"""Note URLs: recognise, build and canonicalise them (pure functions)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

# Real note ids are 24 hex digits; the sandbox follows the same form.
_NOTE_PATH = re.compile(
    r"^/(?:explore|discovery/item|user/profile/[0-9a-zA-Z]+)/([0-9a-fA-F]{24})/?$"
)
_NOTE_ID = re.compile(r"^[0-9a-fA-F]{24}$")


class BadNoteReference(ValueError):
    """A `-a urls=` or `-a note_ids=` entry that names no note."""


def note_id_from_url(url: str) -> str | None:
    """The note id of a note-page URL, or None for any other URL."""
    match = _NOTE_PATH.match(urlsplit(url).path)
    return match.group(1).lower() if match else None


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
    return note_id.lower(), (token or None)


def note_url(base_url: str, note_id: str, xsec_token: str | None, xsec_source: str | None) -> str:
    """The note page URL on `base_url` carrying the listing's token."""
    query = {}
    if xsec_token:
        query["xsec_token"] = xsec_token
        query["xsec_source"] = xsec_source or "pc_feed"
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{base_url.rstrip('/')}/explore/{note_id}{suffix}"


def split_arg(value: str | None) -> list[str]:
    """A comma-separated spider argument → its non-empty stripped entries."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
