"""The notes list, answered from a compact listing of every note kept in memory.

Why not a ``find(filter).sort(field).skip(k).limit(50)`` per page: the embedded server
(secantus) builds a query's whole result before it cuts it. An unfiltered sorted page
walks the sort field's index, then decodes every note it names, sorts and cuts; a
filtered one scans and decodes the collection, and its count scans it again: 3 to 7 s
per page on 20,000 notes, whatever the indexes. Only a narrow index range (``from``/``to``
on ``published_at``) or an ``_id`` lookup stays cheap there.

So the list keeps one :class:`~crawler.web.queries.ListRow` per note (the fields it
filters and sorts on: a few hundred bytes a note), loaded once with a projection, and
each of the three orders sorted once. A page filters that in memory, counts what passes,
and fetches its 50 notes with one ``{_id: {$in: […]}}`` lookup and the list projection.
Its memory is about that of the notes' titles, descs and OCR texts (the search runs over
them): a few MB for 20,000 notes of the sandbox's shape, more where OCR texts are long.

Freshness, without a full load per page:

- every page first asks the collection's count (a key scan, no decoding); a changed
  count (notes written or removed) loads the listing again before the page is answered;
- at most every ``DELTA_S`` seconds, in the background, the notes crawled since the
  newest crawl time seen (``last_crawled_at``, an index range) replace their rows, so a
  re-crawl's likes and enrichment show up;
- every ``RELOAD_S`` seconds the listing is loaded again in the background (catches
  changes that touch neither: an enrichment written later by the enrich spider).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from crawler.core import names
from crawler.web.queries import DATE_RANK, ROW_PROJECTION, SORTS, ListRow, NoteQuery
from crawler.web.reads import LIST_PROJECTION

logger = logging.getLogger(__name__)

DELTA_S = 5.0
RELOAD_S = 300.0
MAX_TAG_CHOICES = 60
MAX_VIA_CHOICES = 200


def _ordered(rows: dict[str, ListRow]) -> list[list[ListRow]]:
    """Each sort's order: descending by its key, ties by note id ascending."""
    by_id = sorted(rows.values(), key=lambda r: r.note_id)
    return [
        sorted(by_id, key=lambda r, k=k: r.keys[k], reverse=True)  # stable: ids stay ascending
        for k in range(len(SORTS))
    ]


def _choices(rows: dict[str, ListRow]) -> dict[str, list[str]]:
    counts: dict[str, int] = {}
    for r in rows.values():
        for t in set(r.tags):
            counts[t] = counts.get(t, 0) + 1
    tags = sorted(counts, key=lambda t: (-counts[t], t))[:MAX_TAG_CHOICES]
    via = sorted({r.found_via for r in rows.values() if r.found_via})[:MAX_VIA_CHOICES]
    return {"tags": tags, "found_via": via}


class NoteListing:
    """The listing of one database's notes (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rows: dict[str, ListRow] = {}
        self._orders: list[list[ListRow]] = [[] for _ in SORTS]
        self._choices: dict[str, list[str]] = {"tags": [], "found_via": []}
        self._loaded_at: float | None = None
        self._delta_at = 0.0
        self._newest: datetime | None = None  # the newest last_crawled_at seen
        self._load_lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    async def page(self, db: Any, query: NoteQuery, page_size: int) -> dict[str, Any]:
        """``{notes, total, pages}`` of one list page (of the listing as last refreshed)."""
        passes = query.predicate()
        order = self._orders[query.sort_index]
        matched = order if not query.values else [r for r in order if passes(r)]
        start = (query.page - 1) * page_size
        ids = [r.note_id for r in matched[start : start + page_size]]
        found = {
            d["_id"]: d async for d in db[names.NOTES].find({"_id": {"$in": ids}}, LIST_PROJECTION)
        }
        notes = [found[i] for i in ids if i in found]
        total = len(matched)
        return {"notes": notes, "total": total, "pages": max(1, -(-total // page_size))}

    @property
    def choices(self) -> dict[str, list[str]]:
        """The drop-downs' values: the most used tags, the found_via values."""
        return self._choices

    def start(self, db: Any) -> None:
        """Begin the first load in the background (the app's start-up: the first page
        then waits only for what is left of it)."""
        self._background = asyncio.create_task(self._quietly(self.refresh(db)))

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._background

    async def refresh(self, db: Any) -> None:
        """Bring the listing up to date as the module docstring says (once per page)."""
        count = await db[names.NOTES].estimated_document_count()
        now = self._clock()
        if self._loaded_at is None or count != len(self._rows):
            await self._load(db, unless_count=count)
        elif self._background is None or self._background.done():
            if now - self._loaded_at > RELOAD_S:
                self._background = asyncio.create_task(self._quietly(self._load(db)))
            elif now - self._delta_at > DELTA_S and self._newest is not None:
                self._delta_at = now
                self._background = asyncio.create_task(self._quietly(self._delta(db)))

    async def _quietly(self, work: Any) -> None:
        try:
            await work
        except Exception as exc:  # the list keeps its rows; the next page tries again
            logger.warning("refreshing the notes listing failed: %s", exc)

    async def _load(self, db: Any, unless_count: int | None = None) -> None:
        async with self._load_lock:
            if unless_count == len(self._rows) and self._loaded_at is not None:
                return  # loaded meanwhile by a page that waited on the same change
            started = self._clock()
            rows = {}
            async for doc in db[names.NOTES].find({}, ROW_PROJECTION):
                row = ListRow.of(doc)
                rows[row.note_id] = row
            self._install(rows)
            self._loaded_at = self._delta_at = started

    async def _delta(self, db: Any) -> None:
        async with self._load_lock:  # never mixes rows read before a load with its rows
            if self._newest is None:
                return
            changed = {}
            async for doc in db[names.NOTES].find(
                {"last_crawled_at": {"$gte": self._newest}}, ROW_PROJECTION
            ):
                row = ListRow.of(doc)
                if self._rows.get(row.note_id) != row:
                    changed[row.note_id] = row
            if changed:
                self._install({**self._rows, **changed})

    def _install(self, rows: dict[str, ListRow]) -> None:
        crawled = list(SORTS).index("crawled")
        newest: datetime | None = None
        for r in rows.values():
            rank, value = r.keys[crawled]
            if rank == DATE_RANK and (newest is None or value > newest):
                newest = value
        self._rows, self._orders, self._choices = rows, _ordered(rows), _choices(rows)
        self._newest = newest
