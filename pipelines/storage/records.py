"""The structural check of a unit read back from the spool (issue 18, defect 3).

A spool record is valid JSON by the time it is decoded, but not necessarily a unit the
writer can store: hand-edited, written by a bug, or of the wrong shape (no ``note_id``,
``fields`` a string, a date that is not one). :func:`unit_problem` names what is wrong,
so the spool sets it aside once (``.bad``) instead of letting it crash every replay.
It checks the fields every unit kind has, then builds the unit's writes as the writer
would and encodes them as BSON: whatever the writer would trip on is found here.

A record of a kind (``type``) or version (``v``) this code does not know is *not* a
problem: it belongs to another version of the code and stays in the spool for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import bson

from pipelines.storage.kinds import KINDS, kind_of

__all__ = ["unit_problem"]

DATE_FIELDS = ("crawled_at", "seen_at")


def unit_problem(record: Mapping[str, Any]) -> str | None:
    """Why ``record`` can never be stored (a snake_case reason), or None."""
    kind_name, version = record.get("type"), record.get("v")
    if not isinstance(kind_name, str) or not kind_name:
        return "no_type"
    if kind_name not in KINDS:
        return None  # a kind this code does not know: kept in the spool for the code that does
    if isinstance(version, bool) or not isinstance(version, int):
        return "no_version"
    kind = kind_of(record)
    if kind is None:
        return None  # another version's unit: kept in the spool for it
    try:
        key = kind.key(record)
    except KeyError as exc:
        return _missing(exc)
    if not isinstance(key, str) or not key:
        return "bad_key"
    for name in DATE_FIELDS:
        if name in record and not isinstance(record[name], datetime):
            return f"bad_{name}"
    if not isinstance(record.get("run_id"), str):
        return "bad_run_id"
    if not isinstance(record.get("fields"), Mapping):
        return "bad_fields"
    if not isinstance(record.get("truncated", []), list):
        return "bad_truncated"
    if not isinstance(record.get("stats") or {}, Mapping):
        return "bad_stats"
    try:
        writes = [*kind.writes(record), *kind.superseded_writes(record)]
        document = kind.insert_document(record)
        bson.encode({"writes": [[query, update] for query, update, _ in writes],
                     "document": document or {}})  # fmt: skip
    except KeyError as exc:
        return _missing(exc)
    except Exception as exc:  # whatever the writer would trip on
        return f"unwritable_{type(exc).__name__}"
    return None


def _missing(exc: KeyError) -> str:
    name = re.sub(r"[^0-9A-Za-z_]+", "_", str(exc.args[0] if exc.args else ""))[:40]
    return f"missing_{name or 'field'}"
