"""The enrichment state's rules (crawler/core/enrichment_state.py): rank order, due-ness,
the stored form, and that the Mongo filters beside them select, on the real Mongo-wire
server, exactly what the rules say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crawler.core.enrichment_state import (
    EnrichmentState,
    EnrichmentStatus,
    EnrichmentUsage,
    backlog_query,
    rank_at_most_filters,
    rank_of,
)

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
PAST, FUTURE = NOW - timedelta(hours=1), NOW + timedelta(hours=1)

# Stored enrichments and their rank (storage keeps the best; ties go to the newer).
RANKED: list[tuple[Any, int]] = [
    (None, 0),
    ("junk", 0),
    ({"status": "pending"}, 1),
    ({"status": "odd"}, 1),  # an unknown status reads as pending
    ({"status": "deferred"}, 2),
    ({"status": "failed"}, 2),
    ({"status": "skipped"}, 2),
    ({"status": "done", "backend": "local"}, 3),
    ({"status": "done", "backend": "gemini"}, 4),
]

# Stored enrichments and whether the backlog picks them up at NOW (without upgrading
# local results; with it, "done_local" is due too).
DUE: dict[str, tuple[dict[str, Any] | None, bool]] = {
    "deferred_due": ({"status": "deferred", "next_attempt_at": PAST}, True),
    "deferred_now": ({"status": "deferred", "next_attempt_at": NOW}, True),
    "deferred_later": ({"status": "deferred", "next_attempt_at": FUTURE}, False),
    "deferred_unset": ({"status": "deferred", "next_attempt_at": None}, True),
    "pending_unset": ({"status": "pending"}, True),
    "pending_later": ({"status": "pending", "next_attempt_at": FUTURE}, False),
    "failed_retry": ({"status": "failed", "next_attempt_at": PAST}, True),
    "failed_later": ({"status": "failed", "next_attempt_at": FUTURE}, False),
    "failed_final": ({"status": "failed", "next_attempt_at": None}, False),
    "done_gemini": ({"status": "done", "backend": "gemini"}, False),
    "done_local": ({"status": "done", "backend": "local"}, False),
    "off": ({"status": "skipped", "reason": "disabled"}, True),
    "empty": ({"status": "skipped", "reason": "empty"}, False),
    "never": (None, True),
    "stale": ({"status": "done", "backend": "gemini", "stale": True}, True),
}


def is_due(doc: dict[str, Any] | None, *, include_local: bool) -> bool:
    state = EnrichmentState.from_document(doc)
    return state is None or state.is_due(NOW, include_local=include_local)


def test_rank_order() -> None:
    # (a stored non-document, "junk", only ever meets the filters below)
    readable = [(doc, rank) for doc, rank in RANKED if doc != "junk"]
    assert [rank_of(doc) for doc, _ in readable] == [rank for _, rank in readable]
    done = EnrichmentState(status=EnrichmentStatus.DONE, backend="gemini")
    local = EnrichmentState(status=EnrichmentStatus.DONE, backend="local")
    settled = [EnrichmentState(status=s) for s in ("deferred", "failed", "skipped")]
    pending = EnrichmentState(status=EnrichmentStatus.PENDING)
    assert len({s.rank for s in settled}) == 1
    assert done.rank > local.rank > settled[0].rank > pending.rank > rank_of(None)
    assert rank_of(done) == rank_of(done.to_document()) == 4


@pytest.mark.parametrize("name", list(DUE))
def test_is_due(name: str) -> None:
    doc, due = DUE[name]
    assert is_due(doc, include_local=False) is due
    assert is_due(doc, include_local=True) is (due or name == "done_local")


def test_is_due_reads_a_naive_stored_time_as_utc() -> None:
    """pymongo reads datetimes back naive; the state compares them as UTC."""
    naive_past = PAST.replace(tzinfo=None)
    state = EnrichmentState.from_document({"status": "deferred", "next_attempt_at": naive_past})
    assert state is not None and state.next_attempt_at == PAST and state.is_due(NOW)


def test_to_and_from_document_round_trip() -> None:
    state = EnrichmentState(
        status=EnrichmentStatus.DEFERRED, backend="gemini", model="gemini-2.5-flash",
        key_fp="fp:1234", prompt_version="note_zh.v1", cache_key="note_zh.v1/gemini/ab",
        attempts=2, reason="quota_exhausted", next_attempt_at=FUTURE, updated_at=NOW,
        result={"summary": "s", "key_points": ["a"]}, content_hash="c0ffee",
        usage=EnrichmentUsage(requests=3, prompt_tokens=1200, output_tokens=80),
    )  # fmt: skip
    doc = state.to_document()
    assert (doc["status"], doc["backend"], type(doc["status"])) == ("deferred", "gemini", str)
    assert doc["usage"] == {"requests": 3, "prompt_tokens": 1200, "output_tokens": 80}
    assert "stale" not in doc  # stored only when set
    assert EnrichmentState.from_document(doc) == state
    stale = EnrichmentState(status=EnrichmentStatus.DONE, backend="gemini", stale=True)
    assert stale.to_document()["stale"] is True
    assert EnrichmentState.from_document(stale.to_document()) == stale
    assert EnrichmentState.from_document(stale.to_document()).fresh().stale is False


def test_from_document_of_a_missing_or_odd_document() -> None:
    assert EnrichmentState.from_document(None) is None
    assert EnrichmentState.from_document("junk") is None
    odd = EnrichmentState.from_document(
        {"status": "odd", "attempts": None, "usage": "x", "unknown": 1}
    )
    assert odd == EnrichmentState(status=EnrichmentStatus.PENDING)


def test_rank_filters_select_exactly_the_ranks(mongo_sync) -> None:
    """The server-side filter lets a new enrichment in exactly when it ranks at least as
    high as the stored one (or strictly higher, for replays)."""
    docs = [{"_id": "missing"}] + [{"_id": i, "enrichment": e} for i, (e, _) in enumerate(RANKED)]
    mongo_sync.r.insert_many(docs)
    ranks = {"missing": 0} | {i: rank for i, (_, rank) in enumerate(RANKED)}
    for max_rank in range(-1, 5):
        found = {d["_id"] for q in rank_at_most_filters(max_rank) for d in mongo_sync.r.find(q)}
        assert found == {k for k, rank in ranks.items() if rank <= max_rank}, max_rank


@pytest.mark.parametrize("include_local", [False, True])
def test_backlog_query_selects_exactly_what_is_due(mongo_sync, include_local: bool) -> None:
    docs = [{"_id": k, "enrichment": doc} for k, (doc, _) in DUE.items()]
    mongo_sync.notes.insert_many([{"_id": "missing"}, *docs])  # no enrichment field at all
    query = backlog_query(NOW, include_local=include_local)
    selected = {d["_id"] for d in mongo_sync.notes.find(query)}
    due = {k for k, (doc, _) in DUE.items() if is_due(doc, include_local=include_local)}
    assert selected == due | {"missing"}
