"""``python -m crawler.report [RUN_ID] [--out DIR]``: the report of a past run (default:
the latest), from the project's settings (store, ``IMAGES_STORE``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from crawler.core.names import CRAWL_RUNS
from crawler.report._html import write_run_report
from pipelines.mongo import MongoSettings, close_databases, open_database


async def _main(args: argparse.Namespace) -> int:
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    _, db = await open_database(MongoSettings.from_settings(settings))
    try:
        run_id = args.run_id
        if run_id is None:
            latest = await db[CRAWL_RUNS].find_one({}, sort=[("started_at", -1)])
            if latest is None:
                print("crawler.report: no runs recorded yet", file=sys.stderr)
                return 1
            run_id = latest["_id"]
        path = await write_run_report(
            db, run_id, Path(args.out), images_store=settings.get("IMAGES_STORE")
        )
    except LookupError as exc:
        print(f"crawler.report: {exc.args[0]}", file=sys.stderr)
        return 1
    finally:
        await close_databases()
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the HTML report of a crawl run.")
    parser.add_argument("run_id", nargs="?", help="crawl_runs _id (default: the latest run)")
    parser.add_argument("--out", default=None, help="output directory (default: RUN_REPORT_DIR)")
    args = parser.parse_args(argv)
    if args.out is None:
        from scrapy.utils.project import get_project_settings

        args.out = get_project_settings().get("RUN_REPORT_DIR")
        if not args.out:
            print(
                "crawler.report: RUN_REPORT_DIR is empty (reports off); pass --out", file=sys.stderr
            )
            return 2
    return asyncio.run(_main(args))
