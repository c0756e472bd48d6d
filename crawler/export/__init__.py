"""Flat exports of the store: CSV, JSON lines, Parquet and Excel, streamed.

``python -m crawler.export notes|comments|users|note_stats --format csv|parquet|jsonl|xlsx
[--since DATE] [-o FILE]``; in code, :func:`export_table`. The columns of each table are
in :data:`TABLES` (``crawler/export/_columns.py``); :class:`FlatCsvItemExporter` gives
Scrapy's ``-O notes.csv`` the same flat note columns. With ``MONGO_URI`` empty the CLI
joins the embedded server, or serves the directory from a child process for the length
of the export (``_store.py`` says why not from its own).
"""

from crawler.export._columns import TABLES, Column, Kind, Table
from crawler.export._run import export_table
from crawler.export._writers import FORMATS, arrow_schema
from crawler.export.feed import FlatCsvItemExporter

__all__ = [
    "FORMATS",
    "TABLES",
    "Column",
    "FlatCsvItemExporter",
    "Kind",
    "Table",
    "arrow_schema",
    "export_table",
]
