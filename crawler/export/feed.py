"""``scrapy crawl xhs -O notes.csv`` with flat columns (wired in ``FEED_EXPORTERS``).

Scrapy's own CSV exporter writes nested parts (``user``, ``interact``, ``images``,
``enrichment``) as Python reprs. This one turns every item into the row of its export
table first (the columns of ``python -m crawler.export``, spelled as that command's CSV
spells them) and lets Scrapy's CSV writing do the rest, ``FEED_EXPORT_FIELDS`` included.
Items of a kind no export table describes are written as Scrapy would.
"""

from __future__ import annotations

from typing import Any

from itemadapter import ItemAdapter
from scrapy.exporters import CsvItemExporter

from crawler.export._columns import TABLES, Table
from crawler.export._writers import as_text


def table_for(fields: set[str]) -> Table | None:
    """The export table an item belongs to, by the fields that mark each kind."""
    if {"note_id", "title"} <= fields:
        return TABLES["notes"]
    if "comment_id" in fields:
        return TABLES["comments"]
    if {"user_id", "red_id"} <= fields:
        return TABLES["users"]
    return None


class FlatCsvItemExporter(CsvItemExporter):
    def export_item(self, item: Any) -> None:
        adapter = ItemAdapter(item)
        table = table_for(set(adapter.field_names()))
        if table is None:
            super().export_item(item)
            return
        row = table.row(adapter.asdict())
        super().export_item({c.name: as_text(row[c.name], c.kind) for c in table.columns})
