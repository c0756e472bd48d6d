"""The notes list's query string → a predicate over list rows, an order and a page
(pure, no I/O).

A :class:`ListRow` is the little of a note the list filters and sorts on
(:data:`ROW_PROJECTION`, built by :meth:`ListRow.of`); the listing
(``crawler/web/listing.py``) keeps one per note. ``q`` searches title, desc and the OCR
text of the images, case-insensitively, as plain text; ``tag``, ``status``, ``backend``
and ``found_via`` match exactly; ``author`` matches the user id exactly or the nickname
as a substring (case-insensitive); ``from``/``to`` (``YYYY-MM-DD``, UTC, both ends
included) bound ``published_at``. The sorts are descending, ties by note id; a missing
or odd value sorts as MongoDB would (numbers < strings < dates, absent last). A bad
value is reported, not guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from crawler.core.timeutil import as_utc

SORTS: dict[str, tuple[str, str]] = {
    "likes": ("liked", "most liked"),
    "published": ("published_at", "newest published"),
    "crawled": ("last_crawled_at", "last crawled"),
}
FILTER_FIELDS = ("q", "tag", "author", "status", "backend", "found_via", "from", "to")
MAX_QUERY_CHARS = 200
ROW_PROJECTION = {
    "title": 1, "desc": 1, "tags": 1, "user.user_id": 1, "user.nickname": 1,
    "published_at": 1, "last_crawled_at": 1, "interact.liked": 1, "found_via": 1,
    "enrichment.status": 1, "enrichment.backend": 1, "enrichment.result.images.ocr_text": 1,
}  # fmt: skip
_SEP = "\x00"  # between the searched texts: a search never matches across two of them


class BadQuery(ValueError):
    """A query-string value the list cannot use (message names the parameter)."""


def _date(name: str, text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadQuery(f"{name}={text!r} is not a date (YYYY-MM-DD)") from None


def _get(doc: Any, *path: str) -> Any:
    for part in path:
        doc = doc.get(part) if isinstance(doc, Mapping) else None
    return doc


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


DATE_RANK = 3  # the rank of a date in _sortable's order


def _sortable(value: Any) -> tuple[int, Any]:
    """MongoDB's order of the types a sorted field holds: absent/null < numbers <
    strings < dates (anything else counts as absent)."""
    if isinstance(value, bool) or value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, datetime):
        return (DATE_RANK, as_utc(value))
    return (0, 0)


@dataclass(frozen=True, slots=True)
class ListRow:
    """What the list filters and sorts a note on."""

    note_id: str
    text: str  # title, desc and OCR texts, lower-cased, _SEP between them
    tags: tuple[str, ...]
    user_id: str | None
    nickname: str  # lower-cased
    status: str | None
    backend: str | None
    found_via: str | None
    published_at: datetime | None
    keys: tuple[tuple[int, Any], ...]  # one sortable per SORTS entry, in its order

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> ListRow:
        """The row of a stored note (any shape: odd values become empty)."""
        images = _get(doc, "enrichment", "result", "images")
        ocr = [_get(i, "ocr_text") for i in images] if isinstance(images, list) else []
        texts = [doc.get("title"), doc.get("desc"), *ocr]
        tags = doc.get("tags")
        tags = tags if isinstance(tags, list) else [tags]
        published = doc.get("published_at")
        values = {
            "liked": _get(doc, "interact", "liked"),
            "published_at": published,
            "last_crawled_at": doc.get("last_crawled_at"),
        }
        return cls(
            note_id=str(doc.get("_id")),
            text=_SEP.join(t for t in texts if isinstance(t, str)).lower(),
            tags=tuple(t for t in tags if isinstance(t, str)),
            user_id=_str(_get(doc, "user", "user_id")),
            nickname=(_str(_get(doc, "user", "nickname")) or "").lower(),
            status=_str(_get(doc, "enrichment", "status")),
            backend=_str(_get(doc, "enrichment", "backend")),
            found_via=_str(doc.get("found_via")),
            published_at=as_utc(published) if isinstance(published, datetime) else None,
            keys=tuple(_sortable(values[f]) for f, _ in SORTS.values()),
        )


@dataclass(frozen=True)
class NoteQuery:
    values: dict[str, str] = field(default_factory=dict)  # the filters that are set
    sort: str = "crawled"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> NoteQuery:
        values = {k: params[k].strip() for k in FILTER_FIELDS if params.get(k, "").strip()}
        for k, v in values.items():
            if len(v) > MAX_QUERY_CHARS:
                raise BadQuery(f"{k} is longer than {MAX_QUERY_CHARS} characters")
        for k in ("from", "to"):
            if k in values:
                _date(k, values[k])
        sort = params.get("sort") or "crawled"
        if sort not in SORTS:
            raise BadQuery(f"sort={sort!r} is not one of {', '.join(SORTS)}")
        try:
            page = int(params.get("page") or 1)
        except ValueError:
            raise BadQuery(f"page={params.get('page')!r} is not a number") from None
        if page < 1:
            raise BadQuery("page must be at least 1")
        return cls(values, sort, page)

    def predicate(self) -> Callable[[ListRow], bool]:
        """Whether a row passes every filter that is set (values parsed once, here)."""
        v = self.values
        q = v["q"].lower() if "q" in v else None
        author = v.get("author")
        nick = author.lower() if author else None
        tag = v.get("tag")
        exact = [(k, v[k]) for k in ("status", "backend", "found_via") if k in v]
        lo = _date("from", v["from"]) if "from" in v else None
        hi = _date("to", v["to"]) + timedelta(days=1) if "to" in v else None

        def passes(row: ListRow) -> bool:
            if q is not None and q not in row.text:
                return False
            if author is not None and author != row.user_id and nick not in row.nickname:
                return False
            if tag is not None and tag not in row.tags:
                return False
            if any(getattr(row, k) != want for k, want in exact):
                return False
            if lo is not None or hi is not None:
                at = row.published_at
                if at is None or (lo is not None and at < lo) or (hi is not None and at >= hi):
                    return False
            return True

        return passes

    @property
    def sort_index(self) -> int:
        """Where this query's sort is in :attr:`ListRow.keys`."""
        return list(SORTS).index(self.sort)

    def url(self, **changes: Any) -> str:
        """The list's query string with some parameters changed (``None`` drops one)."""
        params: dict[str, Any] = {**self.values, "sort": self.sort, "page": self.page, **changes}
        return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})
