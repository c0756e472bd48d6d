"""The pymongo examples of docs/schema.md run against stored data and answer sensibly."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from tests.factories import Clock, build_storage, make_note

from .test_pipeline import run_pipeline

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def _ocr(text: str) -> dict:
    return {
        "status": "done",
        "backend": "gemini",
        "result": {"summary": "s", "images": [{"index": 0, "ocr_text": text, "caption": "c"}]},
    }


async def test_schema_examples(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(now)
    clock.advance(-2 * 86400)
    notes = [
        make_note(i, published_at=now, enrichment=_ocr("记得涂防晒霜" if i == 2 else "无关"))
        for i in range(4)
    ]
    notes[3].enrichment = {"status": "deferred", "reason": "quota", "next_attempt_at": clock()}
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s", clock), notes)
    clock.advance(86400)
    again = [make_note(i, published_at=now, enrichment=n.enrichment) for i, n in enumerate(notes)]
    again[1].interact.liked = 1000  # note 1 grows fastest
    again[0].interact.liked = 10
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s", clock), again)

    blocks = re.findall(r"```python\n(.*?)```", SCHEMA_DOC.read_text("utf-8"), re.S)
    assert len(blocks) == 4
    namespace: dict = {"db": mongo_sync}
    for block in blocks:
        exec(block, namespace)

    assert namespace["top_tags"][0]["_id"] == "露营" and namespace["top_tags"][0]["notes"] == 4
    fastest = namespace["fastest"]
    assert fastest[0]["_id"] == notes[1].note_id and fastest[0]["gained"] == 999
    assert fastest[0]["per_day"] == 999 and fastest[0]["title"] == "笔记 1"
    assert [h["_id"] for h in namespace["hits"]] == [notes[2].note_id]
    assert [w["_id"] for w in namespace["waiting"]] == [notes[3].note_id]
