"""The merge rules: waves of distinct notes (the rank filters are tested beside the rules,
in tests/crawler/test_enrichment_state.py)."""

from __future__ import annotations

from pipelines.storage import (
    unique_waves,
)


def test_unique_waves():
    units = [{"note_id": n} for n in ["a", "b", "a", "c", "a", "b"]]
    waves = unique_waves(units)
    assert [[u["note_id"] for u in w] for w in waves] == [["a", "b", "c"], ["a", "b"], ["a"]]
