"""Item → unit: bookkeeping, the enrichment's stored form, from_backlog, size cap."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crawler.core.enrichment_state import EnrichmentState
from pipelines.storage import (
    RejectedNote,
    dumps_record,
    loads_record,
    prepare_unit,
)
from tests.factories import T0, make_note


def test_prepare_unit():
    item = make_note(5, enrichment=EnrichmentState(status="done", backend="gemini"))
    unit = prepare_unit(item, now=T0.replace(tzinfo=None), run_id="r1", max_chars=1000)
    assert unit["note_id"] == item.note_id and "note_id" not in unit["fields"]
    assert "enrichment" not in unit["fields"] and "change" not in unit["fields"]
    assert unit["crawled_at"] == T0 and unit["crawled_at"].tzinfo is not None
    assert unit["stats"] == {
        "note_id": item.note_id,
        "crawled_at": T0,
        "crawl_run_id": "r1",
        "liked": 5,
        "collected": 10,
        "comments": 3,
        "shares": 1,
    }
    assert unit["fields"]["images"][0]["status"] == "pending"
    assert loads_record(dumps_record(unit)) == unit
    assert unit["enrichment"] == {
        **EnrichmentState(status="done", backend="gemini").to_document(),
        "content_hash": unit["content_hash"],
    }
    # The crawl time is fetched_at (to the millisecond); a note marked from_backlog is
    # passing through again (enrich spider), not a new observation.
    fetched = make_note(5, fetched_at=T0 + timedelta(microseconds=1500))
    unit = prepare_unit(fetched, now=T0 + timedelta(hours=1), run_id="r", max_chars=9)
    assert unit["crawled_at"] == T0 + timedelta(milliseconds=1) and unit["stats"] is not None
    assert unit["observed"] is True
    fetched.from_backlog = True
    unit = prepare_unit(fetched, now=T0, run_id="r", max_chars=9)
    assert unit["stats"] is None and unit["crawled_at"] == T0 + timedelta(milliseconds=1)
    assert unit["observed"] is False and "from_backlog" not in unit["fields"]
    with pytest.raises(RejectedNote) as info:
        prepare_unit(make_note(1, desc="x" * (16 << 20)), now=T0, run_id="r", max_chars=1 << 30)
    assert info.value.reason == "document_too_large"
