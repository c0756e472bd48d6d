"""What people paste into ``-a urls=`` and ``-a note_ids=``, turned into note references.

Forms of a ``urls=`` entry (entries are separated by ASCII commas; a note title with an
ASCII comma splits share text, so a fragment without a URL or id is joined to the
fragments after it until one brings the URL: :func:`url_entries`):

- a note URL (``/explore/<id>``, ``/discovery/item/<id>``, ``/user/profile/<u>/<id>``),
  with or without ``xsec_token``;
- the app's share text: the URL inside it is taken ("…快来看吧！ 😆 abc 😆
  http://xhslink.com/a/AbCdEf，复制本条信息…");
- a share link on a share-link host (``XHS_SHORT_LINK_HOSTS``, xhslink.com): the spider
  requests it once without following redirects and crawls the note its ``Location``
  names (:func:`note_from_redirect`);
- a bare note id, or ``ID:TOKEN``: as in ``note_ids=``.

Anything else is refused with a reason (:class:`Refused`): another scheme
(``javascript:``, ``file://``), an http(s) URL that is neither a note nor a share link,
text without a URL, a malformed id. A reference without a token takes the one stored
with the note in Mongo (:func:`fill_stored_tokens`); a note never stored is refused
with the line that says how to get a URL carrying one (:data:`HOW_TO_GET_A_TOKEN`).

Parsing is pure (:func:`parse_inputs`); the store lookup is the one async edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from crawler.core.names import NOTES
from crawler.urls import (
    BadNoteReference,
    find_url,
    is_short_link,
    looks_like_note_id,
    parse_note_id_ref,
    parse_note_url,
    split_arg,
    url_scheme,
)

HOW_TO_GET_A_TOKEN = (
    "open the note in the app and use Share > Copy link (paste the whole text), or open "
    "it in a browser from a search or profile page and copy the address, which carries "
    "?xsec_token=…"
)


class NoteRef(NamedTuple):
    note_id: str
    token: str | None
    source: str | None
    found_via: str  # url | note_id | short_link


class ShortLink(NamedTuple):
    url: str
    entry: str  # what was pasted (share text or the link itself)


class Refused(NamedTuple):
    entry: str  # the argument entry as given (cut)
    reason: str  # a stats key: bad_argument, xsec_token_missing, short_link_unresolved
    message: str  # one line naming the argument and what was wrong


@dataclass
class Inputs:
    """The note references of one run's ``urls=`` and ``note_ids=``."""

    refs: list[NoteRef] = field(default_factory=list)
    short_links: list[ShortLink] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.refs or self.short_links)

    def refuse(self, entry: str, reason: str, message: str) -> None:
        self.refused.append(Refused(entry[:200], reason, " ".join(message.split())))


def _url_entry(inputs: Inputs, entry: str, short_hosts: tuple[str, ...]) -> None:
    scheme = url_scheme(entry)
    if scheme is not None and scheme not in ("http", "https") and not looks_like_note_id(entry):
        inputs.refuse(
            entry, "bad_argument", f"urls= {scheme}: URLs are refused, only http(s) note URLs "
            f"and share links: {entry[:200]!r}",
        )  # fmt: skip
        return
    url = entry if scheme in ("http", "https") else find_url(entry)
    if url is None:
        if looks_like_note_id(entry):  # a bare id pasted into urls=
            _id_entry(inputs, entry, "urls=", "note_id")
        else:
            inputs.refuse(
                entry,
                "bad_argument",
                f"urls= no note URL, share link or note id in {entry[:200]!r}",
            )
        return
    if is_short_link(url, short_hosts):
        inputs.short_links.append(ShortLink(url, entry[:200]))
        return
    try:
        note_id, token, source = parse_note_url(url)
    except BadNoteReference as exc:
        hosts = ", ".join(short_hosts)
        inputs.refuse(entry, "bad_argument", f"urls= {exc} (nor a share link on {hosts})")
        return
    inputs.refs.append(NoteRef(note_id, token, source, "url"))


def _id_entry(inputs: Inputs, entry: str, argument: str, found_via: str) -> None:
    try:
        note_id, token = parse_note_id_ref(entry)
    except BadNoteReference as exc:
        inputs.refuse(entry, "bad_argument", f"{argument} {exc}")
        return
    inputs.refs.append(NoteRef(note_id, token, "pc_feed", found_via))


def _starts_an_entry(fragment: str) -> bool:
    """Whether a comma-separated fragment reads as an entry of its own: it starts with a
    scheme (a URL, ``javascript:``…) or is a note id."""
    return url_scheme(fragment) is not None or looks_like_note_id(fragment)


def url_entries(value: str | None) -> list[str]:
    """The entries of a ``urls=`` value. Share text whose title holds an ASCII comma
    arrives in pieces ("…快来看吧！ 😆 Hello", " world 😆 http://xhslink.com/a/…，复制…"):
    a fragment with no URL that is not a note id takes the following fragments, up to
    the first that brings a URL, unless one of them starts an entry of its own. Text
    that never reaches a URL stays one entry (refused once, not once per comma)."""
    entries: list[str] = []
    joining = False  # the last entry is text still waiting for its URL
    for raw in (value or "").split(","):
        fragment = raw.strip()
        if joining and not _starts_an_entry(fragment):
            entries[-1] = f"{entries[-1]},{raw}".strip()  # the title's own spacing kept
        elif fragment:
            entries.append(fragment)
        else:
            continue
        last = entries[-1]
        joining = find_url(last) is None and not _starts_an_entry(last)
    return entries


def parse_inputs(urls: str, note_ids: str, *, short_hosts: Iterable[str]) -> Inputs:
    """``urls=`` and ``note_ids=`` values → references, share links to follow, refusals."""
    hosts = tuple(host.strip().lower() for host in short_hosts if host.strip())
    inputs = Inputs()
    for entry in url_entries(urls):
        _url_entry(inputs, entry, hosts)
    for entry in split_arg(note_ids):
        _id_entry(inputs, entry, "note_ids=", "note_id")
    return inputs


def note_from_redirect(link: ShortLink, status: int, location: str) -> NoteRef | Refused:
    """The note a share link's answer points to, or why it points to none."""
    if not 300 <= status < 400 or not location:
        return Refused(
            link.entry, "short_link_unresolved",
            f"urls= share link {link.url} answered HTTP {status}, not a redirect to a note",
        )  # fmt: skip
    try:
        note_id, token, source = parse_note_url(location)
    except BadNoteReference as exc:
        return Refused(
            link.entry, "short_link_unresolved", f"urls= share link {link.url} led elsewhere: {exc}"
        )
    return NoteRef(note_id, token, source, "short_link")


async def fill_stored_tokens(db: Any, refs: list[NoteRef]) -> tuple[list[NoteRef], list[Refused]]:
    """References without a token take the stored note's ``xsec_token``; those of notes
    the store does not know (or knows without a token) are refused, saying how to get
    one. ``db`` None (store unreachable): every tokenless reference is refused."""
    missing = sorted({ref.note_id for ref in refs if not ref.token})
    stored: dict[str, str] = {}
    if missing and db is not None:
        cursor = db[NOTES].find({"_id": {"$in": missing}}, {"xsec_token": 1})
        stored = {doc["_id"]: doc["xsec_token"] async for doc in cursor if doc.get("xsec_token")}
    kept: list[NoteRef] = []
    refused: list[Refused] = []
    for ref in refs:
        if ref.token:
            kept.append(ref)
        elif ref.note_id in stored:
            kept.append(ref._replace(token=stored[ref.note_id]))
        else:
            refused.append(
                Refused(
                    ref.note_id,
                    "xsec_token_missing",
                    f"note {ref.note_id} has no xsec_token and is not stored yet: "
                    f"{HOW_TO_GET_A_TOKEN}",
                )
            )
    return kept, refused
