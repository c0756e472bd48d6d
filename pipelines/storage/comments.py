"""Comments in storage: the note's thread fields and one ``comments`` unit per comment.

A note item read with its thread (``item.comments`` is a list) is stored as its note
unit plus one comment unit per comment or reply; the note keeps ``comments_complete``,
``comments_reason`` and ``comments_crawled`` (how the thread was read: what the next
crawl compares to skip an unchanged thread). A note whose thread was not read in this
crawl (``item.comments`` is None) carries none of these fields, so the stored ones
stay as they are.

Merge rules of the ``comments`` collection (pure, order-free, as for notes):

- the document ``_id`` is the comment id; a comment of a note the incremental check
  found ``new`` is inserted whole (an insert that collides gets the updates);
- the latest fields (like and reply counts move with each crawl) are written only by a
  unit at least as recent as the stored ``last_seen_at`` (a replayed old unit never
  overwrites newer data); ``first_seen_at`` is the earliest sighting ever.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crawler.core.text import clean_text
from crawler.core.timeutil import as_utc
from pipelines.incremental import as_adapter
from pipelines.storage.sanitize import sanitize

COMMENT_UNIT = "comment"
COMMENT_UNIT_VERSION = 1
COMMENT_SCHEMA_VERSION = 1
THREAD_FIELDS = ("comments_complete", "comments_reason", "comments_crawled")
Write = tuple[dict[str, Any], dict[str, Any], bool]  # (filter, update, upsert)


def split_thread(data: dict[str, Any]) -> list[Any] | None:
    """Take the comments out of a note's fields (``data``, a shallow copy of the item);
    without a thread read in this crawl, the thread fields go too. Returns the comments
    (None: not read)."""
    comments = data.pop("comments", None)
    if comments is None:
        for name in THREAD_FIELDS:
            data.pop(name, None)
    return comments


def _count(value: Any) -> tuple[int | None, str | None]:
    """A ``CountText`` (sanitized to a dict) as (int, raw text)."""
    if isinstance(value, Mapping):
        return value.get("value"), value.get("raw")
    return None, None


def comment_document_fields(comment: Any, max_chars: int, truncated: list[str]) -> dict[str, Any]:
    """The stored fields of one comment (sanitized; counts flat: int plus raw text)."""
    fields = sanitize(comment, max_chars, "", truncated)
    fields.pop("comment_id", None)
    fields.pop("fetched_at", None)
    likes, likes_raw = _count(fields.pop("like_count", None))
    replies, replies_raw = _count(fields.pop("reply_count", None))
    target = fields.pop("target_comment", None)
    fields["truncated_fields"] = sorted({*fields.pop("truncated", []), *truncated})
    return {
        **fields,
        "target_comment": (
            {"id": target.get("comment_id"), "user": target.get("user")}
            if isinstance(target, Mapping)
            else None
        ),
        "like_count": likes,
        "like_count_raw": likes_raw,
        "reply_count": replies,
        "reply_count_raw": replies_raw,
    }


def prepare_comment_unit(
    comment: Any, *, now: datetime, run_id: str, max_chars: int, note_new: bool = False
) -> dict[str, Any]:
    """The storage unit (and spool record) of one comment. ``note_new``: its note was not
    stored when the incremental check looked, so neither is the comment."""
    adapter = as_adapter(comment)
    truncated: list[str] = []
    fields = comment_document_fields(adapter.item, max_chars, truncated)
    return {
        "type": COMMENT_UNIT,
        "v": COMMENT_UNIT_VERSION,
        "comment_id": clean_text(str(adapter["comment_id"])),
        "note_new": note_new,
        "seen_at": as_utc(adapter.get("fetched_at") or now),
        "run_id": run_id,
        "fields": fields,
        "truncated": fields["truncated_fields"],
    }


def comment_units(item: Any, *, now: datetime, run_id: str, max_chars: int) -> list[dict[str, Any]]:
    """One unit per comment of a note item's thread ([] when it was not read)."""
    adapter = as_adapter(item)
    comments = adapter.get("comments")
    if not comments:
        return []
    note_new = adapter.get("change") == "new"
    seen_at = as_utc(adapter.get("fetched_at") or now)
    return [
        prepare_comment_unit(
            comment, now=seen_at, run_id=run_id, max_chars=max_chars, note_new=note_new
        )
        for comment in comments
    ]


# --- merge rules --------------------------------------------------------------------------


def comment_key(unit: Mapping[str, Any]) -> str:
    return unit["comment_id"]


def _latest(unit: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **unit["fields"],
        "comment_id": unit["comment_id"],
        "last_seen_at": unit["seen_at"],
        "crawl_run_id": unit["run_id"],
        "schema_version": COMMENT_SCHEMA_VERSION,
    }


def new_comment_document(unit: Mapping[str, Any]) -> dict[str, Any] | None:
    """The whole document of a comment of a new note (None: merge instead)."""
    if not unit.get("note_new") or unit.get("replayed"):
        return None
    return {"_id": unit["comment_id"], **_latest(unit), "first_seen_at": unit["seen_at"]}


def comment_writes(unit: Mapping[str, Any]) -> list[Write]:
    """The upsert of the latest fields, filtered on ``last_seen_at <= seen_at``
    (newer stored data makes the upsert collide on ``_id``: superseded), with
    ``first_seen_at`` ``$min``'d."""
    t = unit["seen_at"]
    return [
        (
            {"_id": unit["comment_id"], "last_seen_at": {"$not": {"$gt": t}}},
            {"$set": _latest(unit), "$min": {"first_seen_at": t}},
            True,
        )
    ]


def superseded_comment_writes(unit: Mapping[str, Any]) -> list[Write]:
    """For a unit older than the stored data: still an earlier sighting."""
    return [
        (
            {"_id": unit["comment_id"], "first_seen_at": {"$gt": unit["seen_at"]}},
            {"$set": {"first_seen_at": unit["seen_at"]}},
            False,
        )
    ]
