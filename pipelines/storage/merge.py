"""The note merge rules, kept pure: unit → the ``notes`` writes that merge it.

No read and no aggregation pipeline (secantus runs those about 7× slower): plain
inserts and updates, built so the rules hold for concurrent writers and spool replays
whatever the order the server applies them in.

- A note the incremental check found ``new`` is inserted whole
  (:func:`new_note_document`, what the updates below would create; an insert costs
  the server about a third of an upsert) unless the unit is a replay. If it was
  stored meanwhile the insert collides on ``_id`` and the note gets the updates.
- The latest fields are written only if this unit is at least as recent as the
  stored ``last_crawled_at`` (a replayed old unit never overwrites newer data).
- ``first_seen_at`` is the earliest crawl time ever seen.
- ``enrichment`` is replaced only by one at least as good
  (:func:`crawler.core.enrichment_state.rank_of`; ties go to the newer; a replayed unit
  needs a strictly better one). A kept ``done`` result made for other content gets
  ``enrichment.stale: true`` (the enrich spider's backlog picks it up).
- A unit that is not an observation (``observed: false``: a backlog note passing
  through again) does not move ``last_crawled_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crawler.core.enrichment_state import EnrichmentStatus, rank_at_most_filters, rank_of

SCHEMA_VERSION = 1
NoteWrite = tuple[dict[str, Any], dict[str, Any], bool]  # (filter, update, upsert)


def note_key(unit: Mapping[str, Any]) -> str:
    return unit["note_id"]


def _latest_fields(unit: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a unit sets on its note: the scraped ones plus the crawl bookkeeping."""
    latest = {
        **unit["fields"],
        "crawl_run_id": unit["run_id"],
        "content_hash": unit["content_hash"],
        "last_change": unit["change"],
        "truncated_fields": unit["truncated"],
        "schema_version": SCHEMA_VERSION,
    }
    if unit.get("observed", True):
        latest["last_crawled_at"] = unit["crawled_at"]
    return latest


def new_note_document(unit: Mapping[str, Any]) -> dict[str, Any] | None:
    """The whole note document to insert, for a unit whose note was not stored when the
    incremental check looked; ``None`` for any other unit (a replayed unit may be
    stale: it is always merged). It is what :func:`note_writes` would create."""
    if unit.get("change") != "new" or unit.get("replayed"):
        return None
    return {
        "_id": unit["note_id"],
        **_latest_fields(unit),
        "last_crawled_at": unit["crawled_at"],
        "first_seen_at": unit["crawled_at"],
        "enrichment": unit["enrichment"],
    }


def note_writes(unit: Mapping[str, Any]) -> list[NoteWrite]:
    """The ``notes`` writes for one unit (see module doc): plain updates, no read.

    1. Upsert of the latest fields, filtered on ``last_crawled_at <= crawled_at``: when
       newer data is stored the filter misses (a missing or null ``last_crawled_at``
       matches ``$not: {$gt}``), the upsert's insert collides on ``_id``
       and the unit is *superseded* (its fields are not written). ``first_seen_at`` is
       ``$min``'d, ``enrichment`` only ``$setOnInsert``.
    2. The enrichment, on existing notes whose stored one is not better (for a
       replayed, older unit: strictly worse); one or two updates with disjoint filters.
       A fresh done+gemini result outranks everything: it goes into the upsert itself.
    3. ``enrichment.stale: true`` on a kept ``done`` enrichment whose
       ``enrichment.content_hash`` is not this unit's (the note changed since).

    Independent of their order, so an unordered bulk may apply them either way.
    """
    replay = bool(unit.get("replayed"))
    t = unit["crawled_at"]
    note_id = unit["note_id"]
    latest = _latest_fields(unit)
    rank = rank_of(unit["enrichment"])
    best = rank == 4 and not replay  # nothing outranks it: no conditional write needed
    update: dict[str, Any] = {"$set": latest, "$min": {"first_seen_at": t}}
    on_insert: dict[str, Any] = {}
    if "last_crawled_at" not in latest:
        on_insert["last_crawled_at"] = t
    if best:
        latest["enrichment"] = unit["enrichment"]
    else:
        on_insert["enrichment"] = unit["enrichment"]
    if on_insert:
        update["$setOnInsert"] = on_insert
    writes: list[NoteWrite] = [
        ({"_id": note_id, "last_crawled_at": {"$not": {"$gt": t}}}, update, True)
    ]
    if rank and not best:
        for query in rank_at_most_filters(rank - 1 if replay else rank):
            writes.append(
                ({"_id": note_id, **query}, {"$set": {"enrichment": unit["enrichment"]}}, False)
            )
    if not best and not replay:
        # A kept done result made for other content is flagged for the enrich backlog.
        # Order-free: a write of the new enrichment (above) replaces the whole object,
        # and once it is stored its content_hash equals this one, so this no longer matches.
        stale_filter = {
            "_id": note_id,
            "enrichment.status": EnrichmentStatus.DONE.value,
            "enrichment.content_hash": {"$exists": True, "$ne": unit["content_hash"]},
        }
        writes.append((stale_filter, {"$set": {"enrichment.stale": True}}, False))
    return writes


def superseded_writes(unit: Mapping[str, Any]) -> list[NoteWrite]:
    """For a unit whose fields lost to newer stored data: still an earlier sighting, and
    a fresh best enrichment (which :func:`note_writes` put into the upsert only) still
    goes onto the note if the stored content is the content it was made for, as the
    conditional enrichment writes would have put it (an enrich run's result for a note
    re-crawled meanwhile is not lost: the note would stay in the backlog and be paid
    for again)."""
    writes: list[NoteWrite] = [
        (
            {"_id": unit["note_id"], "first_seen_at": {"$gt": unit["crawled_at"]}},
            {"$set": {"first_seen_at": unit["crawled_at"]}},
            False,
        )
    ]
    if rank_of(unit["enrichment"]) == 4 and not unit.get("replayed"):
        writes.append(
            (
                {"_id": unit["note_id"], "content_hash": unit["content_hash"]},
                {"$set": {"enrichment": unit["enrichment"]}},
                False,
            )
        )
    return writes


def unique_waves(
    units: list[dict[str, Any]], key: Callable[[Mapping[str, Any]], str] = note_key
) -> list[list[dict[str, Any]]]:
    """Split units so no wave holds the same document twice (unordered writes must not race)."""
    waves: list[tuple[set[str], list[dict[str, Any]]]] = []
    for unit in units:
        k = key(unit)
        for ids, wave in waves:
            if k not in ids:
                ids.add(k)
                wave.append(unit)
                break
        else:
            waves.append(({k}, [unit]))
    return [wave for _, wave in waves]
