"""The merge rules: the rank filters on the real server, waves of distinct notes."""

from __future__ import annotations

from crawler.core.enrichment_state import rank_at_most_filters, rank_of
from pipelines.storage import (
    unique_waves,
)

ENRICHMENTS = [
    (None, 0),
    ("junk", 0),
    ({"status": "pending"}, 1),
    ({"status": "odd"}, 1),
    ({"status": "deferred"}, 2),
    ({"status": "failed"}, 2),
    ({"status": "skipped"}, 2),
    ({"status": "done", "backend": "local"}, 3),
    ({"status": "done", "backend": "gemini"}, 4),
]


def test_enrichment_filter_matches_the_rank(mongo_sync):
    """The server-side filter lets a new enrichment in exactly when it ranks at least as
    high as the stored one (or strictly higher, for replays)."""
    assert [rank_of(e) for e, _ in ENRICHMENTS if e != "junk"] == [
        r for e, r in ENRICHMENTS if e != "junk"
    ]
    missing = {"_id": "missing"}
    docs = [missing] + [{"_id": i, "enrichment": e} for i, (e, _) in enumerate(ENRICHMENTS)]
    mongo_sync.r.insert_many(docs)
    ranks = {"missing": 0} | {i: r for i, (_, r) in enumerate(ENRICHMENTS)}
    for max_rank in range(-1, 5):
        found = {d["_id"] for q in rank_at_most_filters(max_rank) for d in mongo_sync.r.find(q)}
        assert found == {k for k, r in ranks.items() if r <= max_rank}, max_rank


def test_unique_waves():
    units = [{"note_id": n} for n in ["a", "b", "a", "c", "a", "b"]]
    waves = unique_waves(units)
    assert [[u["note_id"] for u in w] for w in waves] == [["a", "b", "c"], ["a", "b"], ["a"]]
