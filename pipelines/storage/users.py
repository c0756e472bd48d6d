"""Creator profiles: ``UserItem`` → a user unit → ``users`` (upsert) + a ``user_stats`` row.

A user unit holds the sanitized profile fields (the parser's cuts in ``truncated``),
its counts flattened (``fans``, ``follows``, ``likes_and_collects`` as integers, each
with its shown text in ``<count>_raw``: "1.2万", "10万+"), the crawl bookkeeping and
its ``user_stats`` row (one per user per crawl: the counts, ``notes_seen``,
``crawl_run_id``, ``crawled_at``).
The unit's ``truncated`` (the document's ``truncated_fields``) names every field cut,
by the parser or by storage.

Merge rules (pure, order-free, like the notes'; no read):

- the ``users`` document's ``_id`` is the user id;
- its latest fields are written only by a unit at least as recent as the stored
  ``last_crawled_at`` (a replayed old unit never overwrites newer counts); otherwise
  the unit is *superseded* and only ``first_seen_at`` may move;
- ``first_seen_at`` is the earliest crawl time ever seen (``$min``).

Every profile visit is an observation: there is no incremental verdict for users and
no insert-whole fast path (a crawl stores a few profiles per hundred notes). The kind
(``USER_KIND``: collection ``users``, rows ``user_stats``) is registered in
:mod:`pipelines.storage.kinds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crawler.core.text import clean_text
from crawler.core.timeutil import as_utc
from pipelines.incremental import as_adapter
from pipelines.storage.sanitize import sanitize
from pipelines.storage.unit import check_bson_size

USER_UNIT = "user"
USER_UNIT_VERSION = 1
USER_SCHEMA_VERSION = 1
Write = tuple[dict[str, Any], dict[str, Any], bool]  # (filter, update, upsert)
COUNTS = ("fans", "follows", "likes_and_collects")


def prepare_user_unit(item: Any, *, now: datetime, run_id: str, max_chars: int) -> dict[str, Any]:
    """The storage unit (and spool record) of one profile. Raises :class:`RejectedNote`.

    The crawl time is the item's ``fetched_at`` (else ``now``).
    """
    data = dict(as_adapter(item))
    user_id = clean_text(str(data.pop("user_id")))
    crawled_at = as_utc(data.pop("fetched_at", None) or now)
    notes_seen = data.pop("notes_seen", None)
    interactions = data.pop("interactions", None)
    truncated: list[str] = []  # cut by storage (dotted paths)
    fields = sanitize(data, max_chars, "", truncated)
    counts = sanitize(_flat_counts(interactions), max_chars, "", truncated)
    # Every cut field, the parser's (``tags`` of a profile with 10,000: its typed
    # ProfileTruncated warning, also kept in ``truncated``) and storage's.
    truncated = sorted({*(fields.get("truncated") or []), *truncated})
    fields.update(counts)
    fields["notes_seen"] = notes_seen
    stats_row = {
        "user_id": user_id,
        "crawled_at": crawled_at,
        "crawl_run_id": run_id,
        **{name: counts[name] for name in COUNTS},
        "notes_seen": notes_seen,
    }
    check_bson_size(fields, f"user {user_id}")
    return {
        "type": USER_UNIT,
        "v": USER_UNIT_VERSION,
        "user_id": user_id,
        "crawled_at": crawled_at,
        "run_id": run_id,
        "fields": fields,
        "truncated": truncated,
        "stats": stats_row,
    }


def _flat_counts(interactions: Any) -> dict[str, Any]:
    """``{fans, fans_raw, follows, follows_raw, likes_and_collects, …_raw}`` of the
    item's ``UserInteractions`` (a dataclass or, from the spool side, a mapping)."""
    source = as_adapter(interactions) if interactions is not None else {}
    out: dict[str, Any] = {}
    for name in COUNTS:
        count = source.get(name)
        if count is not None and not isinstance(count, Mapping):
            count = as_adapter(count)
        value = count.get("value") if count is not None else None
        out[name] = value if isinstance(value, int) and not isinstance(value, bool) else None
        raw = count.get("raw") if count is not None else None
        out[f"{name}_raw"] = raw if isinstance(raw, str) else None
    return out


def user_key(unit: Mapping[str, Any]) -> str:
    return unit["user_id"]


def new_user_document(unit: Mapping[str, Any]) -> None:
    """No whole-document insert: nothing says a profile is new, so it is always merged."""
    return None


def user_writes(unit: Mapping[str, Any]) -> list[Write]:
    """One upsert of the latest fields, filtered on ``last_crawled_at <= crawled_at``:
    with newer data stored the filter misses, the insert collides on ``_id`` and the
    writer calls the unit superseded."""
    t = unit["crawled_at"]
    latest = {
        **unit["fields"],
        "user_id": unit["user_id"],
        "crawl_run_id": unit["run_id"],
        "truncated_fields": unit["truncated"],
        "schema_version": USER_SCHEMA_VERSION,
        "last_crawled_at": t,
    }
    return [
        (
            {"_id": unit["user_id"], "last_crawled_at": {"$not": {"$gt": t}}},
            {"$set": latest, "$min": {"first_seen_at": t}},
            True,
        )
    ]


def superseded_user_writes(unit: Mapping[str, Any]) -> list[Write]:
    """For a unit whose fields lost to newer stored data: still an earlier sighting."""
    return [
        (
            {"_id": unit["user_id"], "first_seen_at": {"$gt": unit["crawled_at"]}},
            {"$set": {"first_seen_at": unit["crawled_at"]}},
            False,
        )
    ]
