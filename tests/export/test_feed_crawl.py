"""`scrapy crawl xhs … -O notes.csv` against the sandbox site gives flat columns."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from crawler.export import TABLES
from sandbox.harness import sandbox_env, sandbox_settings


@pytest.mark.slow
def test_scrapy_feed_csv_is_flat(sandbox_site, scrapy_crawl, tmp_path: Path) -> None:
    notes = [sandbox_site.dataset.note(i) for i in range(3)]
    out = tmp_path / "notes.csv"
    settings = {
        **sandbox_settings(tmp_path),
        "ENRICH_BACKEND": "off",
        "FEEDS": json.dumps({str(out): {"format": "csv"}}),
    }
    result = scrapy_crawl(
        "xhs",
        {"note_ids": ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)},
        sandbox_env(sandbox_site),
        settings=settings,
        feed=False,
        timeout=180,
    )
    assert result.returncode == 0, result.log[-3000:]
    table = pacsv.read_csv(out)
    assert table.num_rows == 3 and table.column_names == TABLES["notes"].column_names
    assert table.schema.field("liked").type == pa.int64()
    rows = {r["note_id"]: r for r in table.to_pylist()}
    for n in notes:
        row = rows[n.note_id]
        assert row["author_id"] and row["title"] == n.title
        assert isinstance(json.loads(row["tags"]), list)
        assert row["enrichment_status"] == "skipped"
    assert "NoteUser(" not in out.read_text("utf-8")
