"""A note's stored comments for its enrichment request, when its thread was not read in
this crawl (issue 14).

``item.comments`` is a list only when the spider read the note's thread in this crawl.
It is None for a note whose text changed while its comment count did not (the thread
was skipped as unchanged), for every note of ``scrapy crawl enrich`` (no page is
opened) and for a note deferred for quota and enriched later. When a one-note Gemini
request goes out for such a note, its top comments come from the ``comments``
collection instead: one query per note, by ``note_id``, shown ones only (status 0, or
none recorded, as :func:`~pipelines.enrichment.comments.top_comments` keeps them), most
liked first, at most as many as :data:`COMMENT_TOKEN_BUDGET` can hold. They go to the
same request builder as comments read in the crawl, and the hash takes the same ``+c``
mark, so the result is kept by the next crawls of the unchanged note whether its thread
is read again or not (:func:`~pipelines.enrichment.comments.comments_mark`).

A note with no stored comments is sent without them and without the mark, as before.
A query that fails (MongoDB down) sends the note without them too (stat
``enrich/stored_comments/unavailable``): comments are a complement, not a reason to
hold back the note's request.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from crawler.core.names import COMMENTS
from pipelines.enrichment.comments import (
    COMMENT_TOKEN_BUDGET,
    COMMENTS_MARK,
    LINE_OVERHEAD,
    CommentLine,
    top_comments,
)
from pipelines.enrichment.inputs import NoteInput

logger = logging.getLogger(__name__)

#: The most comment lines the token budget can hold (each costs its overhead and at
#: least one character), so reading more rows could never change the selection.
MAX_STORED_COMMENTS = COMMENT_TOKEN_BUDGET // (LINE_OVERHEAD + 1)
SHOWN_STATUSES = (0, None)  # what top_comments keeps
_PROJECTION = {"content": 1, "status": 1, "like_count": 1, "root_comment_id": 1}
# The order of top_comments (likes down, then id), so the first rows are its pick.
_ORDER = [("like_count", -1), ("_id", 1)]


def stored_query(note_id: str) -> dict[str, Any]:
    """The filter of a note's shown stored comments and replies."""
    return {"note_id": note_id, "status": {"$in": list(SHOWN_STATUSES)}}


def as_comment(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored comment document in the shape :func:`top_comments` reads (storage keeps
    the likes flat, as an integer; the item keeps a ``CountText``)."""
    likes = doc.get("like_count")
    return {
        "comment_id": doc.get("_id"),
        "content": doc.get("content"),
        "status": doc.get("status"),
        "like_count": {"value": likes if isinstance(likes, int) else 0},
        "root_comment_id": doc.get("root_comment_id"),
    }


def with_stored(note: NoteInput, lines: tuple[CommentLine, ...]) -> NoteInput:
    """``note`` carrying ``lines`` and marked ``+c`` (bare, unmarked without lines)."""
    return dataclasses.replace(note, comments=lines, comments_mark=COMMENTS_MARK if lines else "")


class StoredComments:
    """Reads a note's top stored comments (``db`` None: there are none)."""

    def __init__(self, db: Any, *, stats: Any = None, limit: int = MAX_STORED_COMMENTS) -> None:
        self.db = db
        self.stats = stats
        self.limit = limit

    async def top(self, note_id: str) -> tuple[CommentLine, ...]:
        """The note's top shown comments within the token budget, most liked first."""
        if self.db is None or not note_id:
            return ()
        try:
            cursor = (
                self.db[COMMENTS]
                .find(stored_query(note_id), _PROJECTION)
                .sort(_ORDER)
                .limit(self.limit)
            )
            docs = [doc async for doc in cursor]
        except Exception as exc:  # the store is down: the note goes without them
            logger.warning("stored comments of note %s unreadable: %s", note_id, exc)
            self._inc("enrich/stored_comments/unavailable")
            return ()
        lines = top_comments(as_comment(doc) for doc in docs)
        self._inc("enrich/stored_comments/notes" if lines else "enrich/stored_comments/none")
        return lines

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)
