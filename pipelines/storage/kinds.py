"""Unit kinds: which merge rules, collection and observation rows a unit type maps to.

The pipeline finds an item's kind by its class (:func:`kind_for_item`) and asks it for
the unit (``prepare``). The writer is generic: it asks the unit's :class:`UnitKind`
(looked up by the unit's ``type`` and ``v``, :func:`kind_of`) for the document key, the insert of a fresh document, the
order-free merge updates, the fix-up of a superseded unit and the observation row
(``note_stats`` for notes). Spooled records of a kind or version not registered here
stay in the spool for the code that knows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crawler.core.items import CommentItem, NoteItem, UserItem
from crawler.core.names import COMMENTS, NOTE_STATS, NOTES, USER_STATS, USERS
from pipelines.storage import comments, merge, users
from pipelines.storage.unit import NOTE_UNIT, NOTE_UNIT_VERSION, prepare_unit

Unit = Mapping[str, Any]
Write = tuple[dict[str, Any], dict[str, Any], bool]  # (filter, update, upsert)


@dataclass(frozen=True)
class UnitKind:
    name: str  # the unit's "type"
    item_type: type  # the items that become such units
    # item → unit: prepare(item, *, now, run_id, max_chars); raises RejectedNote
    prepare: Callable[..., dict[str, Any]]
    version: int  # the unit's "v" this code writes and reads
    collection: str  # where its documents go
    key: Callable[[Unit], str]  # the document _id
    insert_document: Callable[[Unit], dict[str, Any] | None]  # None: merge instead
    writes: Callable[[Unit], list[Write]]  # order-free merge updates
    superseded_writes: Callable[[Unit], list[Write]]  # when newer data was stored
    # Append-only observation rows (one per unit, under unit["stats"]) and the fields
    # that identify a row when a retried or replayed batch must skip present ones.
    rows_collection: str | None = None
    row_identity: tuple[str, str] = ("", "")


NOTE_KIND = UnitKind(
    name=NOTE_UNIT,
    item_type=NoteItem,
    prepare=prepare_unit,
    version=NOTE_UNIT_VERSION,
    collection=NOTES,
    key=merge.note_key,
    insert_document=merge.new_note_document,
    writes=merge.note_writes,
    superseded_writes=merge.superseded_writes,
    rows_collection=NOTE_STATS,
    row_identity=("note_id", "crawled_at"),
)

COMMENT_KIND = UnitKind(
    name=comments.COMMENT_UNIT,
    item_type=CommentItem,
    prepare=comments.prepare_comment_unit,
    version=comments.COMMENT_UNIT_VERSION,
    collection=COMMENTS,
    key=comments.comment_key,
    insert_document=comments.new_comment_document,
    writes=comments.comment_writes,
    superseded_writes=comments.superseded_comment_writes,
)

USER_KIND = UnitKind(
    name=users.USER_UNIT,
    item_type=UserItem,
    prepare=users.prepare_user_unit,
    version=users.USER_UNIT_VERSION,
    collection=USERS,
    key=users.user_key,
    insert_document=users.new_user_document,
    writes=users.user_writes,
    superseded_writes=users.superseded_user_writes,
    rows_collection=USER_STATS,
    row_identity=("user_id", "crawled_at"),
)

KINDS: dict[str, UnitKind] = {
    NOTE_KIND.name: NOTE_KIND,
    COMMENT_KIND.name: COMMENT_KIND,
    USER_KIND.name: USER_KIND,
}


def kind_of(unit: Unit) -> UnitKind | None:
    """The registered kind of a unit (``None``: unknown type or another version)."""
    kind = KINDS.get(str(unit.get("type")))
    return kind if kind is not None and unit.get("v") == kind.version else None


def kind_for_item(item: Any) -> UnitKind | None:
    """The kind whose units an item becomes (``None``: storage does not know the item)."""
    for kind in KINDS.values():
        if isinstance(item, kind.item_type):
            return kind
    return None
