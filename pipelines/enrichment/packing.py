"""Packing several notes into one Gemini request (pure: decisions, request, validation).

When the binding limit is requests per day (free tier: 20 per project and model), one
request can carry many notes: the answer may be as long as the model's
``outputTokenLimit`` (65,536 for 2.5 flash-lite). This module decides and checks; the
waiting and sending is :mod:`.pack_queue`.

- :func:`should_pack`: ``ENRICH_PACK=always|never`` or, on ``auto``, when the client knows
  the daily limit and today's remaining requests are fewer than the notes due.
- :class:`OutputEstimate`: output tokens a note needs, learned from the ``usageMetadata``
  of past answers (a prior until then), with a margin; :func:`pack_size` fits a pack
  under the output cap, the input estimate (text and comments chars / 4, image tiles)
  and ``ENRICH_MAX_NOTES_PER_REQUEST``; :func:`pick_pack` also keeps apart notes that
  nothing in an answer could tell from each other (:func:`identity`).
- :func:`build_pack`: the request. Shared instructions, then each note under a line
  ``Note <id>:`` with its text and its top comments (the one-note request's
  :func:`~pipelines.enrichment.comments.render_comments` block, same token budget), then
  its images, each after ``Image <n>:``. Image labels are numbered across the whole
  pack, so an image's ``index`` in the answer names the note it belongs to (the
  convention of ``sandbox/gemini/README.md``). The answer schema is
  :class:`PackedAnswer`: ``{notes: [{note_id, title, opening, …, images,
  comment_insights}]}``.
- :func:`check_pack`: every requested note exactly once, its images exactly the labels
  sent for it, its title echoed, and for a note without images the opening of its text
  (or of its first comment) echoed; anything else (missing, duplicated, unknown id,
  images of another note, a foreign title or opening) is *not* stored and goes to
  ``retry`` with a reason. A result is never stored on the wrong note (nor are comment
  insights on a note sent without comments: its entry's are emptied).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from google.genai import types
from pydantic import BaseModel, Field, ValidationError

from pipelines.enrich_schema import CommentInsights, ImageReading, NoteEnrichment
from pipelines.enrichment.comments import render_comments
from pipelines.enrichment.inputs import NoteInput
from pipelines.gemini import estimate_tokens

_SAFE_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
#: Image bytes in one pack: inline data of a request must stay under 20 MB, and base64
#: makes 14 MB of JPEG about 18.7 MB on the wire.
MAX_PACK_IMAGE_BYTES = 14 * 2**20
_BLANKS = re.compile(r"\s+")
#: Characters of a note's text (or first comment) its entry copies as ``opening``, and
#: how many of them must match (a model copying a few fewer is not a mismatch).
OPENING_ASKED = 16
OPENING_CHECKED = 10
#: Output tokens of comment insights grow with the comments sent: one estimate unit
#: (as much as a note's own fields or one image) per this many characters of comments.
COMMENT_CHARS_PER_UNIT = 600
#: The shared instructions before the first ``Note`` label (its wording is part of the
#: prompt: results are cached under the same prompt version as one-note answers).
PACK_INSTRUCTIONS = (
    "下面是 {count} 篇小红书笔记。每篇以一行 “Note <id>:” 开头，后面是它的标题、正文、标签、"
    "读者评论（如有，点赞最多的若干条，已按点赞数排序），以及属于它的图片；"
    "每张图片前有一行 “Image <n>:”，n 在全部笔记中唯一。\n"
    "请为每篇笔记各输出一项（共 {count} 项），放在 notes 中，按笔记出现的顺序：note_id 为该笔记的 id，"
    "title 原样抄写它的标题；opening 原样抄写它正文开头的 {opening} 个字"
    "（正文为空时抄写它第一条评论的开头，都没有时为空字符串）；"
    "images 为它自己的每张图片各一项，index 为标签中的数字，"
    "ocr_text 逐字转写图片中的全部文字，没有文字时为空字符串，caption 用一句话描述图片；"
    "summary、key_points、advice、topics、language 只根据这一篇笔记自己的文字和图片回答；"
    "comment_insights 只根据这一篇笔记自己的读者评论归纳（没有评论时三项都为空列表）："
    "questions 为读者提出的主要问题，agreements 为读者认同、证实或称赞的内容，"
    "disagreements 为读者质疑、反对或有不同经历的内容。"
    "不要把一篇笔记的内容写到另一篇里。"
)


class PackMode(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


def should_pack(mode: PackMode, remaining_today: int | None, due: int) -> bool:
    """Pack when forced, or (``auto``) when the day's known requests cannot cover the notes due."""
    if mode is not PackMode.AUTO:
        return mode is PackMode.ALWAYS
    return remaining_today is not None and remaining_today < due


class PackedNoteResult(NoteEnrichment):
    """One note's entry in a packed answer: a one-note answer (comment insights from the
    note's own comments) plus what ties it to its note."""

    note_id: str = Field(description="The id from the note's 'Note <id>:' line.")
    title: str = Field(description="The note's title, copied exactly.")
    opening: str = Field(
        default="",
        description="The first characters of the note's text (else of its first comment), "
        "copied exactly; empty if it has neither.",
    )


class PackedAnswer(BaseModel):
    """The answer of a packed request: one entry per note, in prompt order."""

    notes: list[PackedNoteResult] = Field(description="One entry per note, in order.")


@dataclass
class OutputEstimate:
    """Output tokens per note, learned from answers: ``per_unit`` tokens for the note's
    own fields and as many again per image (a unit), times ``margin``.

    Starts from ``prior_per_unit`` weighted as ``prior_units`` observed units, so the
    first answers move it but one odd answer does not swing it.
    """

    prior_per_unit: float = 250.0
    prior_units: float = 4.0
    margin: float = 1.5
    tokens: float = 0.0
    units: float = 0.0

    @staticmethod
    def units_of(note: NoteInput) -> int:
        """The note's fields, its images and (rounded up) its comments' insights."""
        chars = sum(len(line.text) for line in note.comments)
        return 1 + len(note.images) + -(-chars // COMMENT_CHARS_PER_UNIT)

    def observe(self, notes: Sequence[NoteInput], output_tokens: int) -> None:
        if output_tokens > 0 and notes:
            self.tokens += output_tokens
            self.units += sum(self.units_of(n) for n in notes)

    @property
    def per_unit(self) -> float:
        weight = self.prior_units
        return (self.prior_per_unit * weight + self.tokens) / (weight + self.units)

    def tokens_for(self, note: NoteInput) -> int:
        return int(self.per_unit * self.units_of(note) * self.margin) + 1


def input_tokens(note: NoteInput) -> int:
    """The note's share of a request's input: its text, its comments, its images' tiles."""
    text = f"{note.title}\n{note.desc}\n{' '.join(note.tags)}\n{render_comments(note.comments)}"
    parts: list[Any] = [text]
    parts += [types.Part.from_bytes(data=img.data, mime_type=img.mime) for img in note.images]
    return estimate_tokens(parts)


@functools.cache
def _instruction_tokens() -> int:
    """A pack's own instructions, counted once (pack_size runs on every note's arrival)."""
    return estimate_tokens([PACK_INSTRUCTIONS])


def pack_size(
    notes: Sequence[NoteInput],
    *,
    max_notes: int,
    output_limit: int,
    estimate: OutputEstimate,
    input_limit: int,
    max_bytes: int = MAX_PACK_IMAGE_BYTES,
) -> int:
    """How many of ``notes`` (from the front) go into the next pack: at most
    ``max_notes``, their estimated output under ``output_limit``, their input under
    ``input_limit`` (with the pack's own instructions) and their image bytes under
    ``max_bytes``; always at least one."""
    out = size = 0
    inp = _instruction_tokens()
    for count, note in enumerate(notes[:max_notes]):
        out += estimate.tokens_for(note)
        inp += input_tokens(note)
        size += sum(len(img.data) for img in note.images)
        if count and (out > output_limit or inp > input_limit or size > max_bytes):
            return count
    return max(min(len(notes), max_notes), 1)


def _plain(text: str) -> str:
    return _BLANKS.sub("", text or "")


def opening_of(note: NoteInput) -> str:
    """What the note's entry must echo as ``opening`` (whitespace removed): the start of
    its text, else of its first comment, else nothing."""
    source = note.desc or (note.comments[0].text if note.comments else "")
    return _plain(source)[:OPENING_CHECKED]


def identity(note: NoteInput) -> tuple[str, str] | None:
    """What tells the note's entry from another's in a packed answer: None when it has
    images (their pack-wide labels do), else its title and opening. Two notes with the
    same identity must not share a pack: an answer swapping them would pass the check."""
    if note.images:
        return None
    return _plain(note.title), opening_of(note)


def pick_pack(
    notes: Sequence[NoteInput],
    *,
    max_notes: int,
    output_limit: int,
    estimate: OutputEstimate,
    input_limit: int,
    max_bytes: int = MAX_PACK_IMAGE_BYTES,
) -> tuple[list[int], bool]:
    """The positions in ``notes`` of the next pack, and whether it is full.

    Notes are taken in order, except one whose :func:`identity` is already in the pack
    (it waits for a later pack); the notes so taken are cut by :func:`pack_size`. The
    pack is full when the cut left one of them out or it holds ``max_notes``."""
    candidates: list[int] = []
    seen: set[tuple[str, str]] = set()
    for position, note in enumerate(notes):
        ident = identity(note)
        if ident is not None:
            if ident in seen:
                continue
            seen.add(ident)
        candidates.append(position)
    size = pack_size(
        [notes[i] for i in candidates],
        max_notes=max_notes,
        output_limit=output_limit,
        estimate=estimate,
        input_limit=input_limit,
        max_bytes=max_bytes,
    )
    return candidates[:size], size < len(candidates) or size >= max_notes


@dataclass(frozen=True)
class PackMember:
    """A note as packed: the id it is labelled with, and the image labels sent for it
    (pack-wide number → the image's position in ``item.images``)."""

    key: str  # the caller's handle (the stored note id)
    label: str  # the id in the prompt
    note: NoteInput
    images: Mapping[int, int]


@dataclass(frozen=True)
class Pack:
    members: tuple[PackMember, ...]
    parts: tuple[types.Part, ...]

    def __len__(self) -> int:
        return len(self.members)


def build_pack(notes: Sequence[tuple[str, NoteInput]]) -> Pack:
    """The request for ``(note id, input)`` pairs. An id that is not a plain token is
    labelled ``n<position>`` instead (the label must be letters, digits, ``_`` or ``-``)."""
    instructions = PACK_INSTRUCTIONS.format(count=len(notes), opening=OPENING_ASKED)
    parts = [types.Part.from_text(text=instructions)]
    members: list[PackMember] = []
    seen: set[str] = set()
    number = 0
    for position, (key, note) in enumerate(notes, 1):
        label = key if _SAFE_ID.match(key) and key not in seen else f"n{position}"
        seen.add(label)
        text = (
            f"Note {label}:\n标题：{note.title or '（无）'}\n正文：{note.desc or '（无）'}\n"
            f"标签：{'、'.join(note.tags) or '（无）'}"
        )
        if note.comments:
            text += f"\n读者评论：\n{render_comments(note.comments)}"
        parts.append(types.Part.from_text(text=text))
        labels: dict[int, int] = {}
        for img in note.images:
            number += 1
            labels[number] = img.index
            parts.append(types.Part.from_text(text=f"Image {number}:"))
            parts.append(types.Part.from_bytes(data=img.data, mime_type=img.mime))
        members.append(PackMember(key, label, note, labels))
    return Pack(tuple(members), tuple(parts))


@dataclass
class PackVerdict:
    """What an answer gave, by member label (unique within a pack): ``results`` to
    store, ``retry`` (why the note's entry cannot be trusted), and the ids in the
    answer that the request did not contain."""

    results: dict[str, NoteEnrichment] = field(default_factory=dict)
    retry: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def _entry_problem(member: PackMember, entry: PackedNoteResult) -> str | None:
    """Why this entry is not this note's answer, or None."""
    sent = sorted(member.images)
    got = sorted(img.index for img in entry.images)
    if got != sent:
        return "image_mismatch"
    if member.note.title and _plain(entry.title) != _plain(member.note.title):
        return "title_mismatch"
    if not member.images and _plain(entry.opening)[:OPENING_CHECKED] != opening_of(member.note):
        return "opening_mismatch"
    return None


def _as_result(member: PackMember, entry: PackedNoteResult) -> NoteEnrichment:
    images = sorted(
        (
            ImageReading(index=member.images[img.index], ocr_text=img.ocr_text, caption=img.caption)
            for img in entry.images
        ),
        key=lambda r: r.index,
    )
    data = entry.model_dump(exclude={"note_id", "title", "opening", "images"})
    if not member.note.comments:  # sent without comments: insights could only be another's
        data["comment_insights"] = CommentInsights().model_dump()
    return NoteEnrichment(**data, images=images)


def check_pack(pack: Pack, parsed: Any) -> PackVerdict:
    """Validate a packed answer against the request (see the module docstring)."""
    verdict = PackVerdict()
    try:
        answer = PackedAnswer.model_validate(parsed)
    except ValidationError:
        verdict.retry = {m.label: "unparsable" for m in pack.members}
        return verdict
    by_label = {m.label: m for m in pack.members}
    counts = Counter(entry.note_id for entry in answer.notes)
    entries: dict[str, PackedNoteResult] = {}
    for entry in answer.notes:
        if entry.note_id not in by_label:
            verdict.unknown.append(entry.note_id)
        else:
            entries[entry.note_id] = entry
    for member in pack.members:
        if counts[member.label] == 0:
            verdict.retry[member.label] = "missing"
        elif counts[member.label] > 1:
            verdict.retry[member.label] = "duplicated"
        elif problem := _entry_problem(member, entries[member.label]):
            verdict.retry[member.label] = problem
        else:
            verdict.results[member.label] = _as_result(member, entries[member.label])
    return verdict
