"""Packed requests: several notes in one ``generateContent`` call, answered note by note.

The convention (the client's packing builds requests this way; sandbox/gemini/README.md):

- The prompt labels each note with a line ``Note <id>:`` (``<id>``: letters, digits,
  ``_`` or ``-``; text may follow on the same line). Every text line up to the next such
  label, and every image after it, belongs to that note. Text before the first label is
  shared instruction and belongs to no note.
- A line ``Image <i>:`` names the next image; ``<i>`` comes back as that image's
  ``index`` (an image without a label gets its position within its note).
- The response schema is an object whose ``notes`` property is an array of objects with
  a ``note_id`` property::

      {"notes": [{"note_id": "...", <per-note fields>, "images": [{"index", "ocr_text", ...}]}]}

The answer has one entry per labelled note, in prompt order, each filled exactly like a
one-note answer from that note's own text, comments and images: OCR texts stay each
picture's ground truth, ``comment_insights`` come from the note's own comment lines and
an ``opening`` field echoes the start of its own text (see :mod:`.generate`), so a result
stored on the wrong note is detectable.

Faults (outcomes ``pack_*``, forced by script or rate; a request that is not packed is
answered normally): ``pack_drop`` leaves one entry out, ``pack_duplicate`` repeats one,
``pack_swap`` makes two entries exchange everything but their ``note_id``,
``pack_unknown`` gives one entry a ``note_id`` the request does not contain.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sandbox.gemini.content import ImageInfo
from sandbox.gemini.generate import FillContext, fill, resolve, split_note, type_of

NOTES_FIELD = "notes"
NOTE_ID_FIELD = "note_id"
PACK_FAULTS = frozenset({"pack_drop", "pack_duplicate", "pack_swap", "pack_unknown"})
_NOTE_LABEL = re.compile(r"^\s*Note\s+([\w\-]+)\s*[:：]\s?(.*)$")
_IMAGE_LABEL = re.compile(r"^\s*(?:Image|图片|图)\s*(\d+)\s*[:：]?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PackedNote:
    """One labelled note of a packed prompt; image indices are the labels' numbers."""

    note_id: str
    texts: tuple[str, ...]
    images: tuple[ImageInfo, ...]


def packed_item_schema(schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The per-note item schema when ``schema`` is a packed answer's, else None."""
    if schema is None:
        return None
    root = FillContext(note=split_note([]), images=(), root=schema)
    top = resolve(schema, root)
    notes = (top.get("properties") or {}).get(NOTES_FIELD)
    if type_of(top) != "object" or not isinstance(notes, Mapping):
        return None
    notes = resolve(notes, root)
    item = resolve(notes.get("items") or {}, root)
    if type_of(notes) != "array" or type_of(item) != "object":
        return None
    return item if NOTE_ID_FIELD in (item.get("properties") or {}) else None


def split_pack(layout: Sequence[str | int], images: Sequence[ImageInfo]) -> list[PackedNote]:
    """The labelled notes of a request, from its parts in order (see the module docstring)."""
    notes: list[tuple[str, list[str], list[ImageInfo]]] = []
    pending_label: int | None = None
    for part in layout:
        if isinstance(part, int):
            if notes:
                own = notes[-1][2]
                index = pending_label if pending_label is not None else len(own)
                own.append(replace(images[part], index=index))
            pending_label = None
            continue
        for line in part.splitlines():
            if match := _NOTE_LABEL.match(line):
                notes.append((match.group(1), [match.group(2)], []))
            elif match := _IMAGE_LABEL.match(line):
                pending_label = int(match.group(1))
            elif notes:
                notes[-1][1].append(line)
    return [PackedNote(nid, tuple(texts), tuple(imgs)) for nid, texts, imgs in notes]


def packed_answer(
    schema: Mapping[str, Any],
    item: Mapping[str, Any],
    notes: Sequence[PackedNote],
    fault: str | None,
    rng: random.Random,
) -> tuple[dict[str, Any], bool]:
    """The JSON answer of a packed request and whether ``fault`` changed it."""
    entries = [
        fill(
            item,
            FillContext(note=split_note(n.texts), images=n.images, root=schema, note_id=n.note_id),
            NOTES_FIELD,
        )
        for n in notes
    ]
    applied = apply_fault(entries, fault, rng, {n.note_id for n in notes})
    shared = FillContext(note=split_note([]), images=(), root=schema)
    top = resolve(schema, shared)
    props = top.get("properties") or {}
    answer = {
        name: entries if name == NOTES_FIELD else fill(props[name], shared, name) for name in props
    }
    return answer, applied


def apply_fault(
    entries: list[dict[str, Any]], fault: str | None, rng: random.Random, ids: set[str]
) -> bool:
    """Change ``entries`` in place as ``fault`` says; False when it cannot apply."""
    if fault not in PACK_FAULTS or not entries:
        return False
    pick = rng.randrange(len(entries))
    if fault == "pack_drop":
        del entries[pick]
    elif fault == "pack_duplicate":
        entries.insert(pick + 1, copy.deepcopy(entries[pick]))
    elif fault == "pack_unknown":
        stranger = next(
            f"unknown{n:04d}" for n in range(len(ids) + 1) if f"unknown{n:04d}" not in ids
        )
        entries[pick][NOTE_ID_FIELD] = stranger
    else:  # pack_swap
        if len(entries) < 2:
            return False
        first, second = rng.sample(range(len(entries)), 2)
        a, b = entries[first], entries[second]
        a_id, b_id = a.get(NOTE_ID_FIELD), b.get(NOTE_ID_FIELD)
        entries[first], entries[second] = {**b, NOTE_ID_FIELD: a_id}, {**a, NOTE_ID_FIELD: b_id}
    return True
