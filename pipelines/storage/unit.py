"""Item → unit: what storage writes for one note, and what the spool keeps.

A *unit* is a plain dict (JSON-able through the spool): ``type`` and ``v`` name its
kind and version (:mod:`pipelines.storage.kinds`), the rest is the kind's own. A note
unit holds the sanitized note fields, its enrichment's stored form (with the
``content_hash`` it was made for), bookkeeping (crawl time, run id, content hash,
incremental verdict, truncated paths) and its ``note_stats`` row. A unit read back
from the spool gets ``replayed: true`` (set by the writer, the one place that knows).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import bson
from bson.errors import InvalidDocument

from crawler.core.enrichment_state import EnrichmentState
from crawler.core.text import clean_text
from crawler.core.timeutil import as_utc
from pipelines.incremental import COUNT_FIELDS, as_adapter, content_hash
from pipelines.storage.comments import split_thread
from pipelines.storage.sanitize import sanitize

NOTE_UNIT = "note"
NOTE_UNIT_VERSION = 1
# A document must stay well under BSON's 16 MiB (the update wraps it).
MAX_UNIT_BSON_BYTES = 15 * 1024 * 1024


class RejectedNote(ValueError):
    """A note that can never be stored (e.g. too large); ``reason`` is a stats key part."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_bson_size(document: Mapping[str, Any], what: str) -> None:
    """Raise :class:`RejectedNote` unless ``document`` encodes as BSON within
    :data:`MAX_UNIT_BSON_BYTES` (``what`` names the record in the message)."""
    try:
        size = len(bson.encode(document))
    except (InvalidDocument, OverflowError, TypeError) as exc:
        raise RejectedNote("invalid_document", f"{what}: not BSON-encodable: {exc}") from exc
    if size > MAX_UNIT_BSON_BYTES:
        raise RejectedNote(
            "document_too_large", f"{what}: {size} bytes of BSON exceeds the 15 MiB cap"
        )


def enrichment_document(enrichment: Any, digest: str) -> dict[str, Any] | None:
    """The stored form of an item's enrichment, stamped with the content hash it was
    made for (storage flags it ``stale`` when the note's content moves on). A plain
    mapping (a stored document passing through again) is read as a state first."""
    state = enrichment
    if isinstance(enrichment, Mapping):
        state = EnrichmentState.from_document(enrichment)
    if not isinstance(state, EnrichmentState):
        return None
    document = state.to_document()
    document["content_hash"] = digest
    return document


def prepare_unit(item: Any, *, now: datetime, run_id: str, max_chars: int) -> dict[str, Any]:
    """The storage unit (and spool record) for one item. Raises :class:`RejectedNote`.

    The crawl time is the item's ``fetched_at`` (else ``now``). An item marked
    ``from_backlog`` (a stored note the enrich spider sends through again) is not a new
    observation: it gets no ``note_stats`` row and does not move ``last_crawled_at``.
    """
    adapter = as_adapter(item)
    data = dict(adapter)  # shallow: sanitize() converts nested dataclasses
    crawled_at = as_utc(data.get("fetched_at") or now)
    observed = not data.pop("from_backlog", False)
    note_id = clean_text(str(data.pop("note_id")))
    split_thread(data)  # its comments are units of their own (pipelines/storage/comments.py)
    change = data.pop("change", None)
    # The incremental check's hash when it ran (the same function of the same content).
    digest = data.pop("content_hash", None) or content_hash(adapter)
    truncated: list[str] = []
    enrichment = sanitize(
        enrichment_document(data.pop("enrichment", None), digest),
        max_chars,
        "enrichment",
        truncated,
    )
    fields = sanitize(data, max_chars, "", truncated)
    interact = fields.get("interact") or {}
    stats_row = {
        "note_id": note_id,
        "crawled_at": crawled_at,
        "crawl_run_id": run_id,
        **{k: interact.get(k) for k in COUNT_FIELDS},
    }
    unit = {
        "type": NOTE_UNIT,
        "v": NOTE_UNIT_VERSION,
        "note_id": note_id,
        "crawled_at": crawled_at,
        "run_id": run_id,
        "change": change,
        "observed": observed,
        "content_hash": digest,
        "fields": fields,
        "enrichment": enrichment,
        "truncated": truncated,
        "stats": stats_row if observed else None,
    }
    check_bson_size({"fields": fields, "enrichment": enrichment}, f"note {note_id}")
    return unit
