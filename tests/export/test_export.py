"""Exports over the real embedded Mongo-wire server: round trips read back with pyarrow
and openpyxl, the CLI's argument errors, and the flat `-O notes.csv` feed exporter."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from pymongo import AsyncMongoClient

from crawler.core.items import NoteInteract
from crawler.export import TABLES, FlatCsvItemExporter, arrow_schema, export_table
from tests.export.factory import comment_docs, note_doc, note_stats_docs, user_doc
from tests.factories import enrichment, make_image, make_note, make_user

ROOT = Path(__file__).resolve().parents[2]
N = 2000


@pytest.fixture
def stored(mongo_sync) -> None:
    mongo_sync.notes.insert_many([note_doc(i) for i in range(N)])
    mongo_sync.note_stats.insert_many([r for i in range(20) for r in note_stats_docs(i)])
    mongo_sync.comments.insert_many([c for i in range(10) for c in comment_docs(i)])
    mongo_sync.users.insert_many([user_doc(u) for u in range(40)])


@pytest.fixture
async def adb(mongo_uri, mongo_db_name):
    client = AsyncMongoClient(mongo_uri, tz_aware=True)
    yield client[mongo_db_name]
    await client.close()


async def test_round_trip_parquet_csv_xlsx(stored, adb, tmp_path: Path) -> None:
    table = TABLES["notes"]
    paths = {fmt: tmp_path / f"notes.{fmt}" for fmt in ("parquet", "csv", "xlsx")}
    for fmt, path in paths.items():
        assert await export_table(adb, table, fmt, path, batch_size=300) == N

    # Parquet: typed columns, lists as lists, aware UTC times.
    pf = pq.ParquetFile(paths["parquet"])
    assert pf.metadata.num_rows == N and pf.metadata.num_row_groups == 7
    t = pf.read()
    assert t.schema == arrow_schema(table)
    assert t.schema.field("liked").type == pa.int64()
    assert t.schema.field("tags").type == pa.list_(pa.string())
    assert t.schema.field("published_at").type == pa.timestamp("ms", tz="UTC")
    rows = {r["note_id"]: r for r in t.to_pylist()}
    r5 = rows[note_doc(5)["_id"]]
    assert r5["author_id"] == "u005" and r5["liked"] == 15 and r5["image_count"] == 3
    assert r5["published_at"] == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert r5["enrichment_status"] == "done" and r5["enrichment_backend"] == "local"
    assert r5["ocr_text"] == "图中文字 5-0 SPF5\n\n图中文字 5-1 SPF5\n\n图中文字 5-2 SPF5"
    assert r5["topics"] == ["防晒"] and r5["key_points"] == ["要点 5.1", "要点 5.2"]
    assert rows[note_doc(9)["_id"]]["shares"] is None  # unknown stays empty, not 0
    assert rows[note_doc(2)["_id"]]["summary"] is None  # deferred: no result

    # CSV: same rows, flat header, ints parse as ints, lists as JSON text.
    c = pacsv.read_csv(paths["csv"])
    assert c.num_rows == N and c.column_names == table.column_names
    assert c.schema.field("liked").type == pa.int64()
    assert c.schema.field("published_at").type == pa.timestamp("s", tz="UTC")
    first = c.slice(5, 1).to_pylist()[0]
    assert json.loads(first["tags"]) == ["防晒", "护肤"]
    assert "NoteUser(" not in paths["csv"].read_text("utf-8")

    # Excel: same rows, numbers as numbers, times naive UTC, a '=' text stays text.
    wb = load_workbook(paths["xlsx"], read_only=True)
    ws = wb["notes"]
    sheet_rows = list(ws.iter_rows(values_only=True))
    header, data = sheet_rows[0], sheet_rows[1:]
    assert list(header) == table.column_names and len(data) == N
    col = {name: k for k, name in enumerate(header)}
    x5 = next(r for r in data if r[col["note_id"]] == note_doc(5)["_id"])
    assert x5[col["liked"]] == 15 and isinstance(x5[col["liked"]], int)
    assert x5[col["published_at"]] == datetime(2026, 11, 1, 13, 0)
    x7 = next(r for r in data if r[col["note_id"]] == note_doc(7)["_id"])
    assert x7[col["desc"]].endswith("=SUM(A1)")
    wb.close()


async def test_other_tables_and_since(stored, adb, tmp_path: Path) -> None:
    out = tmp_path / "c.parquet"
    assert await export_table(adb, TABLES["comments"], "parquet", out) == 30
    c = pq.read_table(out).to_pylist()
    reply = next(r for r in c if r["comment_id"] == "c3-1")
    assert reply["root_comment_id"] == "c3-0" and reply["target_user_id"] == "u900"
    assert reply["like_count"] == 4 and reply["is_author"] is False
    assert await export_table(adb, TABLES["users"], "jsonl", tmp_path / "u.jsonl") == 40
    user = json.loads((tmp_path / "u.jsonl").read_text("utf-8").splitlines()[0])
    assert user["fans"] == 1000 and user["tags"] == ["上海"] and user["gender"] == "female" and user["notes_seen"] == 3
    since = datetime(2026, 11, 3, tzinfo=UTC)
    n = await export_table(adb, TABLES["note_stats"], "csv", tmp_path / "s.csv", since=since)
    assert n == 20 * 3  # days 2, 3 and 4 of five


async def test_empty_collection_has_header(adb, tmp_path: Path) -> None:
    assert await export_table(adb, TABLES["users"], "xlsx", tmp_path / "u.xlsx") == 0
    ws = load_workbook(tmp_path / "u.xlsx", read_only=True)["users"]
    assert [list(r) for r in ws.iter_rows(values_only=True)] == [TABLES["users"].column_names]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crawler.export", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        (["notes", "--format", "xml"], "invalid choice: 'xml'"),
        (["tweets", "--format", "csv"], "invalid choice: 'tweets'"),
        (["notes"], "--format"),
        (["notes", "--format", "csv", "--since", "last week"], "is not a date"),
        (["notes", "--format", "csv", "-o", "/nonexistent/dir/x.csv"], "existing directory"),
    ],
)
def test_cli_bad_arguments_one_line_exit_2(args: list[str], needle: str) -> None:
    done = _cli(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr


def test_cli_exports_over_mongo_uri(stored, mongo_uri, mongo_db_name, tmp_path: Path) -> None:
    out = tmp_path / "n.jsonl"
    env = {"MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name}
    done = _cli("notes", "--format", "jsonl", "--since", "2026-11-20", "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    lines = out.read_text("utf-8").splitlines()
    since = datetime(2026, 11, 20, tzinfo=UTC)
    expected = sum(1 for i in range(N) if note_doc(i)["last_crawled_at"] >= since)
    assert 0 < expected < N
    assert len(lines) == expected and json.loads(lines[0])["liked"] >= 0


def test_feed_exporter_writes_flat_note_columns() -> None:
    item = make_note(
        user=make_user(user_id="u1", nickname="作者"),
        interact=NoteInteract(liked=12000, collected=3, raw={"liked": "1.2万"}),
        images=[make_image(url="https://sns-webpic-qc.xhscdn.com/x/1", path="full/a.jpg")],
        enrichment=enrichment("pending"),
    )
    buf = io.BytesIO()
    exporter = FlatCsvItemExporter(buf)
    exporter.start_exporting()
    exporter.export_item(item)
    exporter.finish_exporting()
    table = pacsv.read_csv(io.BytesIO(buf.getvalue()))
    assert table.column_names == TABLES["notes"].column_names
    row = table.to_pylist()[0]
    assert row["author_id"] == "u1" and row["author_nickname"] == "作者"
    assert row["liked"] == 12000 and row["enrichment_status"] == "pending"
    assert json.loads(row["image_urls"]) == ["https://sns-webpic-qc.xhscdn.com/x/1"]
    assert row["last_change"] == "new"
    assert "NoteUser(" not in buf.getvalue().decode()
