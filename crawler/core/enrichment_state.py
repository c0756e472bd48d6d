"""The enrichment state of one note: one typed object, its rules beside it.

Every module that asks "how good is this enrichment", "is it due again", "what does it
look like in Mongo" or "which stored notes need work" asks this module:

- the enrichment pipeline builds states (:meth:`EnrichmentState.make`);
- storage merges them by :attr:`EnrichmentState.rank` with the filters of
  :func:`rank_at_most_filters`;
- the enrich spider selects its backlog with :func:`backlog_query` and reads stored
  states with :meth:`EnrichmentState.from_document`;
- the chaos bench and the web app read statuses through :class:`EnrichmentStatus`.

Rank (how good a state is; storage keeps the best, ties go to the newer):
done+gemini 4 > done+other 3 > deferred/failed/skipped 2 > pending 1 > none 0.

Due (what the backlog picks up, :meth:`EnrichmentState.is_due` and
:func:`backlog_query` say the same): no state at all; deferred or pending whose
``next_attempt_at`` has passed or is unset; failed with a retry time that has passed;
skipped because enrichment was off (``reason == "disabled"``); a ``stale`` done result
(storage kept it, but it describes older content); and, when upgrading, a done local
result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from crawler.core.timeutil import aware


class EnrichmentStatus(StrEnum):
    DONE = "done"
    DEFERRED = "deferred"  # quota or service: try again at next_attempt_at
    FAILED = "failed"  # retried after ENRICH_RETRY_AFTER while attempts remain
    SKIPPED = "skipped"  # nothing to enrich, or enrichment off ("disabled")
    PENDING = "pending"


class Backend(StrEnum):
    GEMINI = "gemini"
    LOCAL = "local"
    NONE = "none"


SETTLED_STATUSES = (EnrichmentStatus.DEFERRED, EnrichmentStatus.FAILED, EnrichmentStatus.SKIPPED)
DISABLED_REASON = "disabled"


@dataclass
class EnrichmentUsage:
    """What enrichment spent on the note: requests sent (every try the server may bill)
    and tokens."""

    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: EnrichmentUsage) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.output_tokens += other.output_tokens


@dataclass(kw_only=True)
class EnrichmentState:
    """``item.enrichment`` and ``notes.enrichment`` (shape documented in docs/schema.md)."""

    status: EnrichmentStatus
    backend: str = Backend.NONE
    model: str | None = None
    key_fp: str | None = None
    prompt_version: str | None = None
    cache_key: str | None = None
    attempts: int = 0
    reason: str | None = None
    next_attempt_at: datetime | None = None
    updated_at: datetime | None = None
    result: dict[str, Any] | None = None
    usage: EnrichmentUsage = field(default_factory=EnrichmentUsage)
    # Set by storage: the note content hash the result describes.
    content_hash: str | None = None
    # Set by storage on a kept done result that describes other content.
    stale: bool = False

    # --- rules ------------------------------------------------------------------------

    @property
    def rank(self) -> int:
        """done+gemini 4 > done+other 3 > deferred/failed/skipped 2 > pending 1."""
        if self.status is EnrichmentStatus.DONE:
            return 4 if self.backend == Backend.GEMINI else 3
        if self.status in SETTLED_STATUSES:
            return 2
        return 1

    def is_due(self, now: datetime, *, include_local: bool = False) -> bool:
        """Whether the enrich backlog should pick this note up at ``now``."""
        when = aware(self.next_attempt_at)
        if self.stale:
            return True
        if self.status in (EnrichmentStatus.DEFERRED, EnrichmentStatus.PENDING):
            return when is None or when <= now
        if self.status is EnrichmentStatus.FAILED:
            return when is not None and when <= now
        if self.status is EnrichmentStatus.SKIPPED:
            return self.reason == DISABLED_REASON
        return include_local and self.backend == Backend.LOCAL

    def fresh(self) -> EnrichmentState:
        """The same state without the ``stale`` flag."""
        return replace(self, stale=False)

    # --- stored form ------------------------------------------------------------------

    def to_document(self) -> dict[str, Any]:
        """The plain dict stored in Mongo and the spool (every key present)."""
        doc = asdict(self)
        doc["status"] = str(self.status)
        doc["backend"] = str(self.backend)
        if not self.stale:
            doc.pop("stale")
        return doc

    @classmethod
    def from_document(cls, doc: Any) -> EnrichmentState | None:
        """A stored state (``None`` for a missing or malformed one). Unknown keys are
        ignored; naive datetimes (as pymongo reads them) become aware UTC."""
        if not isinstance(doc, Mapping):
            return None
        try:
            status = EnrichmentStatus(doc.get("status"))
        except ValueError:
            status = EnrichmentStatus.PENDING
        known = {f.name for f in fields(cls)} - {"status", "usage"}
        values = {k: aware(v) for k, v in doc.items() if k in known}
        usage = doc.get("usage") if isinstance(doc.get("usage"), Mapping) else {}
        values["usage"] = EnrichmentUsage(
            **{k: int(usage.get(k) or 0) for k in ("requests", "prompt_tokens", "output_tokens")}
        )
        values["attempts"] = int(values.get("attempts") or 0)
        values["stale"] = bool(values.get("stale"))
        return cls(status=status, **values)


def rank_of(state: EnrichmentState | Mapping[str, Any] | None) -> int:
    """The rank of a state, of its stored form, or 0 for none."""
    if isinstance(state, Mapping):
        state = EnrichmentState.from_document(state)
    return 0 if state is None else state.rank


# --- Mongo filters that depend on the rules above -------------------------------------


def rank_at_most_filters(max_rank: int) -> list[dict[str, Any]]:
    """Queries that together match the notes whose stored enrichment ranks at most
    ``max_rank``. Single-field conditions only: secantus cannot use the ``_id`` index
    for a filter with ``$or``/``$nor``/``$expr`` and scans the collection (measured
    ~5× slower on 300 notes, worse as it grows), so "rank ≤ 3" is two queries."""
    not_done = {"enrichment.status": {"$ne": EnrichmentStatus.DONE.value}}
    if max_rank >= 4:
        return [{}]
    if max_rank == 3:
        return [
            not_done,
            {
                "enrichment.status": EnrichmentStatus.DONE.value,
                "enrichment.backend": {"$ne": Backend.GEMINI.value},
            },
        ]
    if max_rank == 2:
        return [not_done]
    if max_rank == 1:
        settled = [EnrichmentStatus.DONE.value, *(s.value for s in SETTLED_STATUSES)]
        return [{"enrichment.status": {"$nin": settled}}]
    if max_rank == 0:
        return [{"enrichment": {"$not": {"$type": "object"}}}]
    return []


def backlog_query(now: datetime, *, include_local: bool) -> dict[str, Any]:
    """MongoDB filter of the notes whose enrichment is due at ``now`` (the query form
    of :meth:`EnrichmentState.is_due`)."""
    due = {
        "$or": [{"enrichment.next_attempt_at": None}, {"enrichment.next_attempt_at": {"$lte": now}}]
    }
    waiting = [EnrichmentStatus.DEFERRED.value, EnrichmentStatus.PENDING.value]
    branches: list[dict[str, Any]] = [
        {"enrichment": None},
        {"$and": [{"enrichment.status": {"$in": waiting}}, due]},
        {
            "enrichment.status": EnrichmentStatus.FAILED.value,
            "enrichment.next_attempt_at": {"$lte": now},
        },
        {"enrichment.status": EnrichmentStatus.SKIPPED.value, "enrichment.reason": DISABLED_REASON},
        {"enrichment.stale": True},
    ]
    if include_local:
        branches.append(
            {
                "enrichment.status": EnrichmentStatus.DONE.value,
                "enrichment.backend": Backend.LOCAL.value,
            }
        )
    return {"$or": branches}
