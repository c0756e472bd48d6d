"""``python -m crawler.export notes|comments|users|note_stats --format FMT [--since DATE] [-o FILE]``.

Reads the configured store (``MONGO_URI``, else the embedded server: joined as the
crawler joins it, or started as a child process for the export, see ``_store.py``) and
writes one flat file. Bad arguments: a one-line error on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from crawler.export._columns import TABLES
from crawler.export._run import export_table
from crawler.export._store import StoreUnavailable, export_database
from crawler.export._writers import FORMATS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_since(text: str) -> datetime:
    """``2026-11-30`` or an ISO 8601 time; a value without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since {text!r} is not a date (YYYY-MM-DD or an ISO 8601 time)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m crawler.export", description="Export a collection to a flat file.")
    p.add_argument("table", choices=sorted(TABLES))
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--since", type=parse_since, help="only documents updated since DATE (UTC)")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: TABLE.FORMAT)")
    return p


async def _export(args: argparse.Namespace, out: Path) -> int:
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    async with export_database(settings) as db:
        return await export_table(
            db,
            TABLES[args.table],
            args.format,
            out,
            since=args.since,
            batch_size=max(1, settings.getint("EXPORT_BATCH_SIZE")),
        )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out: Path = args.output or Path(f"{args.table}.{args.format}")
    if out.is_dir() or not out.resolve().parent.is_dir():
        parser.error(f"-o {str(out)!r}: not a file in an existing directory")
    try:
        count = asyncio.run(_export(args, out))
    except StoreUnavailable as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"{count} {args.table} rows → {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
