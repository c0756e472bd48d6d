"""Listing answers → note references (id + the xsec_token the note page needs).

Shapes (see tests/data/xhs-real/06-09):
- ``search/notes`` (and ``/feed``): ``data.items[]{id, model_type, xsec_token, note_card}``,
  where only ``model_type == "note"`` entries are notes (``rec_query``/``hot_query`` are
  query suggestions);
- ``user_posted`` and ``note/collect/page``: ``data.notes[]{note_id, xsec_token,
  display_title, type}``;
- the profile page's state: ``user.notes[tab][]{id, xsecToken, noteCard}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from crawler.core.items import NoteType
from crawler.parsing.errors import ResponseMalformed
from crawler.parsing.values import data_object, keys_of, load_answer

ListingKind = Literal["search", "notes", "profile"]
NOTE_MODEL_TYPE = "note"
PROFILE_NOTES_TAB = 0  # user.notes[0]: the user's own notes; [1] is what they collected


@dataclass(frozen=True, slots=True)
class ListingRef:
    """A note found in a listing; ``kind`` is the listing shape it came from."""

    note_id: str
    xsec_token: str | None
    title: str
    type: NoteType
    kind: ListingKind


def parse_listing(api_json: Mapping[str, Any] | str | bytes) -> list[ListingRef]:
    """Note references of a listing API answer, in order, without duplicates.

    Raises the typed error of a ``code != 0`` answer (``LoginRequired`` for -100,
    ``IpBlocked`` for 300012, ``AccountFlagged`` for 300011, ``SignatureRejected`` for
    -1, ``ApiError`` otherwise) and ``ResponseMalformed`` for any other shape.
    """
    data = data_object(load_answer(api_json, "listing answer"), "listing answer")
    if isinstance(data.get("items"), list):
        return _unique(_from_items(data["items"]))
    if isinstance(data.get("notes"), list):
        return _unique(_from_notes(data["notes"]))
    raise ResponseMalformed(
        f"listing answer: data has neither items[] nor notes[] (keys: {keys_of(data)})"
    )


def refs_from_profile_state(
    state: Mapping[str, Any], *, tabs: Iterable[int] = (PROFILE_NOTES_TAB,)
) -> list[ListingRef]:
    """Note references server-rendered in a profile page's state (``user.notes[tab]``).

    Only the user's own notes (tab 0) by default; an empty list when the page rendered
    none (e.g. a profile that needs a login). Raises ``ResponseMalformed`` when the state
    is not a profile page's.
    """
    user = state.get("user")
    notes = user.get("notes") if isinstance(user, Mapping) else None
    if not isinstance(notes, list):
        raise ResponseMalformed(f"profile state has no user.notes list (stores: {keys_of(state)})")
    refs = []
    for tab in tabs:
        entries = notes[tab] if 0 <= tab < len(notes) else []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Mapping):
                continue
            card = entry.get("noteCard")
            card = card if isinstance(card, Mapping) else {}
            note_id = _text(card.get("noteId")) or _text(entry.get("id"))
            if note_id:
                refs.append(
                    ListingRef(
                        note_id=note_id,
                        xsec_token=_text(entry.get("xsecToken")) or _text(card.get("xsecToken")),
                        title=_text(card.get("displayTitle")) or _text(card.get("title")) or "",
                        type=_note_type(card.get("type")),
                        kind="profile",
                    )
                )
    return _unique(refs)


def _from_items(items: list[Any]) -> Iterable[ListingRef]:
    for item in items:
        if (
            not isinstance(item, Mapping)
            or item.get("model_type", NOTE_MODEL_TYPE) != NOTE_MODEL_TYPE
        ):
            continue  # rec_query / hot_query suggestions, ads
        card = item.get("note_card")
        card = card if isinstance(card, Mapping) else {}
        note_id = _text(item.get("id")) or _text(card.get("note_id"))
        if note_id:
            yield ListingRef(
                note_id=note_id,
                xsec_token=_text(item.get("xsec_token")) or _text(card.get("xsec_token")),
                title=_text(card.get("display_title")) or _text(card.get("title")) or "",
                type=_note_type(card.get("type")),
                kind="search",
            )


def _from_notes(notes: list[Any]) -> Iterable[ListingRef]:
    for note in notes:
        if not isinstance(note, Mapping):
            continue
        note_id = _text(note.get("note_id")) or _text(note.get("id"))
        if note_id:
            yield ListingRef(
                note_id=note_id,
                xsec_token=_text(note.get("xsec_token")),
                title=_text(note.get("display_title")) or _text(note.get("title")) or "",
                type=_note_type(note.get("type")),
                kind="notes",
            )


def _unique(refs: Iterable[ListingRef]) -> list[ListingRef]:
    """First occurrence of each note, in order."""
    first: dict[str, ListingRef] = {}
    for ref in refs:
        first.setdefault(ref.note_id, ref)
    return list(first.values())


def _note_type(value: Any) -> NoteType:
    return "video" if value == "video" else "normal"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
