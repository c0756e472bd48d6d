"""Export one collection to a file: cursor batches → flat rows → a streaming writer.

The cursor is read in natural order (no server-side sort to buffer) in batches of
``EXPORT_BATCH_SIZE``; each batch becomes rows and is handed to the writer, so memory
holds one batch whatever the collection's size. The file is written under a temporary
name beside the target and renamed when complete: a failed export leaves no half file.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.export._columns import Table
from crawler.export._writers import WRITERS


def since_filter(table: Table, since: datetime | None) -> dict[str, Any]:
    return {table.since_field: {"$gte": since}} if since is not None else {}


async def export_table(
    db: Any,
    table: Table,
    fmt: str,
    path: Path,
    *,
    since: datetime | None = None,
    batch_size: int = 1000,
) -> int:
    """Write ``table`` (documents changed since ``since``) to ``path``; the row count."""
    writer_cls = WRITERS[fmt]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with writer_cls(table, tmp) as writer:
            cursor = db[table.collection].find(since_filter(table, since), batch_size=batch_size)
            batch: list[dict[str, Any]] = []
            async for doc in cursor:
                batch.append(table.row(doc))
                if len(batch) >= batch_size:
                    writer.write(batch)
                    batch = []
            writer.write(batch)
            count = writer.rows
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return count
