"""The flat tables: one typed column list per exported collection, and pure row builders.

A stored document (or a note item as a dict) becomes one row: a dict of column name →
plain value of the column's kind (``str``, ``int``, ``float``, ``bool``, aware UTC
``datetime``, or a list of strings). Writers decide how a kind is spelled in their
format; nothing here knows about files.

Counts are ints (a stored decimal string, the form of integers beyond 64 bits, or
anything else that is not an int in int64 range becomes empty); author, enrichment and
result fields are columns of their own; the OCR text of a note's images is joined into
one column (images in order, separated by a blank line).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from crawler.core import names
from crawler.core.timeutil import as_utc

_INT64_MAX = 2**63 - 1
OCR_SEPARATOR = "\n\n"


class Kind(StrEnum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DATETIME = "datetime"
    LIST = "list"  # of strings


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    get: Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Table:
    """An exportable collection: its columns and the date field ``--since`` filters on."""

    name: str
    collection: str
    since_field: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def row(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The flat, typed row of one document."""
        return {c.name: _coerce(c.get(doc), c.kind) for c in self.columns}


def dig(doc: Any, path: str) -> Any:
    """``doc["a"]["b"]`` for ``"a.b"``; ``None`` as soon as a step is missing."""
    for part in path.split("."):
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(part)
    return doc


def _coerce(value: Any, kind: Kind) -> Any:
    if value is None:
        return None
    if kind is Kind.INT:
        return _as_int(value)
    if kind is Kind.FLOAT:
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if kind is Kind.BOOL:
        return bool(value)
    if kind is Kind.DATETIME:
        return as_utc(value) if isinstance(value, datetime) else None
    if kind is Kind.LIST:
        items = value if isinstance(value, list | tuple) else [value]
        return [str(v) for v in items if v is not None]
    return value if isinstance(value, str) else str(value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and -_INT64_MAX - 1 <= value <= _INT64_MAX:
        return value
    return None


def _path(path: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda doc: dig(doc, path)


def _first(*paths: str) -> Callable[[Mapping[str, Any]], Any]:
    """The first path that is set (a stored document has ``_id``, an item ``note_id``)."""

    def get(doc: Mapping[str, Any]) -> Any:
        for p in paths:
            value = dig(doc, p)
            if value is not None:
                return value
        return None

    return get


def _each(list_path: str, field: str) -> Callable[[Mapping[str, Any]], list[Any]]:
    """``field`` of every mapping in the list at ``list_path`` (unset ones skipped)."""

    def get(doc: Mapping[str, Any]) -> list[Any]:
        items = dig(doc, list_path)
        if not isinstance(items, list):
            return []
        return [dig(x, field) for x in items if dig(x, field) is not None]

    return get


def _names(list_path: str) -> Callable[[Mapping[str, Any]], list[Any]]:
    """Strings of a list kept as they are, mappings by their ``name`` (profile tags)."""

    def get(doc: Mapping[str, Any]) -> list[Any]:
        items = dig(doc, list_path)
        if not isinstance(items, list):
            return []
        return [x.get("name") if isinstance(x, Mapping) else x for x in items]

    return get


def _ocr_text(doc: Mapping[str, Any]) -> str | None:
    texts = [
        t.strip() for t in _each("enrichment.result.images", "ocr_text")(doc) if str(t).strip()
    ]
    return OCR_SEPARATOR.join(texts) if texts else None


def _len(path: str) -> Callable[[Mapping[str, Any]], int]:
    return lambda doc: len(v) if isinstance(v := dig(doc, path), list) else 0


def _enum_value(path: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda doc: v.value if isinstance(v := dig(doc, path), StrEnum) else v


def _cols(*specs: tuple[str, Kind, Callable[[Mapping[str, Any]], Any] | str]) -> tuple[Column, ...]:
    return tuple(Column(n, k, _path(g) if isinstance(g, str) else g) for n, k, g in specs)


S, N, B, D, L = Kind.STR, Kind.INT, Kind.BOOL, Kind.DATETIME, Kind.LIST

NOTES = Table(
    "notes",
    names.NOTES,
    "last_crawled_at",
    _cols(
        ("note_id", S, _first("_id", "note_id")),
        ("url", S, "url"),
        ("title", S, "title"),
        ("desc", S, "desc"),
        ("type", S, "type"),
        ("author_id", S, "user.user_id"),
        ("author_nickname", S, "user.nickname"),
        ("author_avatar", S, "user.avatar"),
        ("tags", L, "tags"),
        ("published_at", D, "published_at"),
        ("updated_at", D, "updated_at"),
        ("ip_location", S, "ip_location"),
        ("liked", N, "interact.liked"),
        ("collected", N, "interact.collected"),
        ("comments", N, "interact.comments"),
        ("shares", N, "interact.shares"),
        ("image_count", N, _len("images")),
        ("image_urls", L, _each("images", "url")),
        ("image_paths", L, _each("images", "path")),
        ("video_url", S, "video.url"),
        ("source", S, "source"),
        ("found_via", S, "found_via"),
        ("fetched_at", D, "fetched_at"),
        ("first_seen_at", D, "first_seen_at"),
        ("last_crawled_at", D, "last_crawled_at"),
        ("crawl_run_id", S, "crawl_run_id"),
        ("last_change", S, _first("last_change", "change")),
        ("enrichment_status", S, _enum_value("enrichment.status")),
        ("enrichment_backend", S, _enum_value("enrichment.backend")),
        ("enrichment_model", S, "enrichment.model"),
        ("enrichment_reason", S, "enrichment.reason"),
        ("enrichment_attempts", N, "enrichment.attempts"),
        ("enrichment_next_attempt_at", D, "enrichment.next_attempt_at"),
        ("enrichment_updated_at", D, "enrichment.updated_at"),
        ("enrichment_stale", B, "enrichment.stale"),
        ("summary", S, "enrichment.result.summary"),
        ("key_points", L, "enrichment.result.key_points"),
        ("advice", L, "enrichment.result.advice"),
        ("topics", L, "enrichment.result.topics"),
        ("language", S, "enrichment.result.language"),
        ("ocr_text", S, _ocr_text),
        ("captions", L, _each("enrichment.result.images", "caption")),
    ),
)

COMMENTS = Table(
    "comments",
    names.COMMENTS,
    "last_seen_at",
    _cols(
        ("comment_id", S, _first("comment_id", "_id")),
        ("note_id", S, "note_id"),
        ("root_comment_id", S, "root_comment_id"),
        ("target_comment_id", S, _first("target_comment_id", "target_comment.id")),
        ("target_user_id", S, _first("target_user_id", "target_comment.user.user_id")),
        ("user_id", S, "user.user_id"),
        ("user_nickname", S, "user.nickname"),
        ("content", S, "content"),
        ("like_count", N, "like_count"),
        ("reply_count", N, "reply_count"),
        ("created_at", D, "created_at"),
        ("ip_location", S, "ip_location"),
        ("status", S, "status"),
        ("is_author", B, "is_author"),
        ("at_users", L, _each("at_users", "nickname")),
        ("picture_count", N, _len("pictures")),
        ("first_seen_at", D, "first_seen_at"),
        ("last_seen_at", D, "last_seen_at"),
    ),
)

USERS = Table(
    "users",
    names.USERS,
    "last_crawled_at",
    _cols(
        ("user_id", S, _first("_id", "user_id")),
        ("red_id", S, "red_id"),
        ("nickname", S, "nickname"),
        ("desc", S, "desc"),
        ("gender", S, "gender"),
        ("ip_location", S, "ip_location"),
        ("avatar", S, "avatar"),
        ("fans", N, "fans"),
        ("follows", N, "follows"),
        ("likes_and_collects", N, "likes_and_collects"),
        ("verified", B, "verified"),
        ("notes_seen", N, "notes_seen"),
        ("tags", L, _names("tags")),
        ("first_seen_at", D, "first_seen_at"),
        ("last_crawled_at", D, "last_crawled_at"),
        ("crawl_run_id", S, "crawl_run_id"),
    ),
)

NOTE_STATS = Table(
    "note_stats",
    names.NOTE_STATS,
    "crawled_at",
    _cols(
        ("note_id", S, "note_id"),
        ("crawled_at", D, "crawled_at"),
        ("crawl_run_id", S, "crawl_run_id"),
        ("liked", N, "liked"),
        ("collected", N, "collected"),
        ("comments", N, "comments"),
        ("shares", N, "shares"),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (NOTES, COMMENTS, USERS, NOTE_STATS)}
