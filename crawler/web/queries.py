"""The notes list's query string → a Mongo filter, sort and page (pure, no I/O).

``q`` searches title, desc and the OCR text of the images (case-insensitive regular
expression on the escaped text: the embedded server has no text index). ``tag``,
``status``, ``backend`` and ``found_via`` match exactly; ``author`` matches the user id
exactly or the nickname as a substring; ``from``/``to`` (``YYYY-MM-DD``, UTC, both ends
included) bound ``published_at``. A bad value is reported, not guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

SORTS: dict[str, tuple[str, str]] = {
    "likes": ("interact.liked", "most liked"),
    "published": ("published_at", "newest published"),
    "crawled": ("last_crawled_at", "last crawled"),
}
FILTER_FIELDS = ("q", "tag", "author", "status", "backend", "found_via", "from", "to")
SEARCH_FIELDS = ("title", "desc", "enrichment.result.images.ocr_text")
MAX_QUERY_CHARS = 200


class BadQuery(ValueError):
    """A query-string value the list cannot use (message names the parameter)."""


def _date(name: str, text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadQuery(f"{name}={text!r} is not a date (YYYY-MM-DD)") from None


def _contains(text: str) -> dict[str, Any]:
    return {"$regex": re.escape(text), "$options": "i"}


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

    def mongo_filter(self) -> dict[str, Any]:
        v = self.values
        clauses: list[dict[str, Any]] = []
        if "q" in v:
            clauses.append({"$or": [{f: _contains(v["q"])} for f in SEARCH_FIELDS]})
        if "author" in v:
            clauses.append(
                {"$or": [{"user.user_id": v["author"]}, {"user.nickname": _contains(v["author"])}]}
            )
        for param, path in (
            ("tag", "tags"),
            ("status", "enrichment.status"),
            ("backend", "enrichment.backend"),
            ("found_via", "found_via"),
        ):
            if param in v:
                clauses.append({path: v[param]})
        published: dict[str, Any] = {}
        if "from" in v:
            published["$gte"] = _date("from", v["from"])
        if "to" in v:
            published["$lt"] = _date("to", v["to"]) + timedelta(days=1)
        if published:
            clauses.append({"published_at": published})
        if not clauses:
            return {}
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def mongo_sort(self) -> list[tuple[str, int]]:
        return [(SORTS[self.sort][0], -1), ("_id", 1)]

    def url(self, **changes: Any) -> str:
        """The list's query string with some parameters changed (``None`` drops one)."""
        params: dict[str, Any] = {**self.values, "sort": self.sort, "page": self.page, **changes}
        return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})
