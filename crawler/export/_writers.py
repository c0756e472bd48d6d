"""Streaming file writers, one per format: rows go in batch by batch, nothing is kept.

Each writer is a context manager with ``write(rows)`` for one batch of flat rows (the
output of :meth:`Table.row`); memory holds at most one batch. How each format spells a
column kind:

| kind | csv | jsonl | parquet | xlsx |
|---|---|---|---|---|
| datetime | ISO 8601 with ``+00:00`` | same | ``timestamp[ms, tz=UTC]`` | naive UTC (Excel has no time zones) |
| list | JSON array text | JSON array | ``list<string>`` | JSON array text |
| bool | ``true`` / ``false`` | JSON bool | ``bool`` | Excel boolean |
| empty | empty field | ``null`` | null | empty cell |

Excel limits are handled, not hit: characters a worksheet cannot hold (control
characters) are dropped, a cell keeps at most 32,767 characters, text that starts with
``=`` stays text (never a formula), and past 1,048,575 data rows a new sheet begins.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from crawler.export._columns import Kind, Table

FORMATS = ("csv", "jsonl", "parquet", "xlsx")
EXCEL_MAX_CELL = 32_767
EXCEL_MAX_DATA_ROWS = 1_048_575  # plus the header row


class Writer:
    def __init__(self, table: Table, path: Path) -> None:
        self.table = table
        self.path = path
        self.rows = 0

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def as_text(value: Any, kind: Kind) -> Any:
    """A value as CSV and Excel carry it (lists as JSON, datetimes as ISO text)."""
    if value is None:
        return None
    if kind is Kind.LIST:
        return json.dumps(value, ensure_ascii=False)
    if kind is Kind.DATETIME:
        return value.isoformat()
    if kind is Kind.BOOL:
        return "true" if value else "false"
    return value


class CsvWriter(Writer):
    def __init__(self, table: Table, path: Path) -> None:
        super().__init__(table, path)
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(table.column_names)
        self._kinds = [(c.name, c.kind) for c in table.columns]

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        self._csv.writerows([as_text(r[n], k) for n, k in self._kinds] for r in rows)
        self.rows += len(rows)

    def close(self) -> None:
        self._file.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class JsonlWriter(Writer):
    def __init__(self, table: Table, path: Path) -> None:
        super().__init__(table, path)
        self._file: IO[str] = path.open("w", encoding="utf-8")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        self._file.writelines(
            json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in rows
        )
        self.rows += len(rows)

    def close(self) -> None:
        self._file.close()


def arrow_schema(table: Table) -> Any:
    import pyarrow as pa

    types = {
        Kind.STR: pa.string(),
        Kind.INT: pa.int64(),
        Kind.FLOAT: pa.float64(),
        Kind.BOOL: pa.bool_(),
        Kind.DATETIME: pa.timestamp("ms", tz="UTC"),
        Kind.LIST: pa.list_(pa.string()),
    }
    return pa.schema([pa.field(c.name, types[c.kind]) for c in table.columns])


class ParquetWriter(Writer):
    """One row group per batch (``pyarrow.RecordBatch`` → ``ParquetWriter.write_batch``)."""

    def __init__(self, table: Table, path: Path) -> None:
        import pyarrow.parquet as pq

        super().__init__(table, path)
        self._schema = arrow_schema(table)
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        import pyarrow as pa

        if rows:
            self._writer.write_batch(pa.RecordBatch.from_pylist(list(rows), schema=self._schema))
            self.rows += len(rows)

    def close(self) -> None:
        self._writer.close()


class XlsxWriter(Writer):
    """openpyxl in ``write_only`` mode: rows are streamed to the sheet's XML file."""

    def __init__(self, table: Table, path: Path) -> None:
        from openpyxl import Workbook

        super().__init__(table, path)
        self._book = Workbook(write_only=True)
        self._kinds = [(c.name, c.kind) for c in table.columns]
        self._sheet: Any = None
        self._sheet_rows = 0
        self._sheets = 0

    def _new_sheet(self) -> None:
        self._sheets += 1
        title = self.table.name if self._sheets == 1 else f"{self.table.name} ({self._sheets})"
        self._sheet = self._book.create_sheet(title)
        self._sheet.append(self.table.column_names)
        self._sheet_rows = 0

    def _cell(self, value: Any, kind: Kind) -> Any:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        if value is None:
            return None
        if kind is Kind.DATETIME:
            return value.astimezone(UTC).replace(tzinfo=None)
        if kind in (Kind.INT, Kind.FLOAT, Kind.BOOL):
            return value
        text = ILLEGAL_CHARACTERS_RE.sub("", str(as_text(value, kind)))[:EXCEL_MAX_CELL]
        if text.startswith("="):  # openpyxl would store it as a formula
            cell = WriteOnlyCell(self._sheet, value=text)
            cell.data_type = "s"
            return cell
        return text

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        for r in rows:
            if self._sheet is None or self._sheet_rows >= EXCEL_MAX_DATA_ROWS:
                self._new_sheet()
            self._sheet.append([self._cell(r[n], k) for n, k in self._kinds])
            self._sheet_rows += 1
        self.rows += len(rows)

    def close(self) -> None:
        if self._sheet is None:
            self._new_sheet()  # an empty export still has its header
        self._book.save(str(self.path))


WRITERS: dict[str, type[Writer]] = {
    "csv": CsvWriter,
    "jsonl": JsonlWriter,
    "parquet": ParquetWriter,
    "xlsx": XlsxWriter,
}
