"""The main job on the bundled sandbox: `python -m sandbox.demo`.

Starts the offline XHS-style site (and, with `--gemini`, the Gemini emulator), runs
`scrapy crawl xhs` on a keyword with enrichment into the embedded MongoDB under
./data/mongo (or MONGO_URI), then prints where the data is and a summary table.
Repeatable: a second run over the same seed is incremental (no image downloads, no
enrichment requests; one more note_stats row per note).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipelines.mongo import MongoSettings, close_databases, open_database
from sandbox.crawlenv import crawl_env
from sandbox.harness import ROOT, start_crawl
from sandbox.site import SiteServer

CRAWL_TIMEOUT_S = 1800


def run_crawl(args: argparse.Namespace, env: dict[str, str]) -> int:
    """``scrapy crawl xhs`` on the keyword through the shared harness, printing its log
    here; files where the project keeps them (./data), so the summary can read them."""
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        crawl = start_crawl(
            "xhs",
            {"keywords": args.keyword, "max_notes": str(args.max_notes)},
            env,
            workdir=Path(tmp),
            settings={"LOG_LEVEL": args.log_level},
            feed=False,
            capture=False,
            sandbox_paths=False,
            stats_dump=False,
        )
        with crawl:
            print(f"demo: {' '.join(crawl.command[2:])}", flush=True)
            return crawl.wait(timeout=CRAWL_TIMEOUT_S).returncode


async def summarize() -> dict[str, Any]:
    """The latest run's record and what the database holds now."""
    from scrapy.utils.project import get_project_settings

    os.chdir(ROOT)
    settings = MongoSettings.from_settings(get_project_settings())
    _, db = await open_database(settings)
    try:
        run = await db.crawl_runs.find_one({}, sort=[("started_at", -1)])
        notes = await db.notes.count_documents({})
        stats_rows = await db.note_stats.count_documents({})
        statuses = await (
            await db.notes.aggregate(
                [{"$group": {"_id": {"$ifNull": ["$enrichment.status", "none"]}, "n": {"$sum": 1}}}]
            )
        ).to_list()
        latest = (
            await db.notes.find(
                {"crawl_run_id": run["_id"]} if run else {},
                {
                    "title": 1,
                    "enrichment.status": 1,
                    "enrichment.backend": 1,
                    "enrichment.result.summary": 1,
                    "images": 1,
                },
            )
            .limit(10)
            .to_list()
        )
        return {
            "run": run,
            "notes": notes,
            "note_stats": stats_rows,
            "statuses": {str(s["_id"]): s["n"] for s in statuses},
            "latest": latest,
            "mongo": "MONGO_URI" if settings.uri else f"embedded ({settings.data_dir})",
        }
    finally:
        await close_databases()


def print_summary(summary: dict[str, Any]) -> None:
    run = summary["run"] or {}
    notes = run.get("notes", {})
    print()
    print("=" * 78)
    print(
        f"Run {run.get('_id', '?')}: {run.get('finish_reason', '?')} (exit {run.get('exit_status', '?')})"
    )
    print(
        f"  notes this run: {notes.get('scraped', 0)} (new {notes.get('new', 0)}, "
        f"changed {notes.get('changed', 0)}, unchanged {notes.get('unchanged', 0)})"
    )
    images = run.get("images", {})
    print(
        f"  images: {images.get('ok', 0)} downloaded, {images.get('skipped_existing', 0)} reused, {images.get('failed', 0)} failed"
    )
    gemini = run.get("gemini", {})
    print(f"  Gemini requests: {sum(gemini.get('requests_by_model', {}).values())}")
    print(
        f"  database: {summary['notes']} notes, {summary['note_stats']} note_stats rows; enrichment {summary['statuses']}"
    )
    print("-" * 78)
    print(f"  {'title':<34} {'enrichment':<16} {'imgs':>4}  summary")
    for doc in summary["latest"]:
        enrichment = doc.get("enrichment") or {}
        label = f"{enrichment.get('status', '-')}/{enrichment.get('backend', '-')}"
        text = ((enrichment.get("result") or {}).get("summary") or "").replace("\n", " ")
        print(
            f"  {_clip(doc.get('title', ''), 34):<34} {label:<16} {len(doc.get('images', [])):>4}  {_clip(text, 40)}"
        )
    print("-" * 78)
    print(
        f"  MongoDB: {summary['mongo']}, database 'xhs' (collections notes, note_stats, crawl_runs)"
    )
    print(
        "    browse it: .venv/bin/python -m pipelines.mongo serve   (then pymongo/mongosh/Compass)"
    )
    print("  images:  data/images/")
    if run.get("_id"):
        print(f"  report:  data/reports/run-{run['_id']}.html")
    print("=" * 78)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keyword", default="面经")
    parser.add_argument("--max-notes", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--notes", type=int, default=1000, help="size of the sandbox dataset")
    parser.add_argument("--gemini", action="store_true", help="enrich through the Gemini emulator")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    with SiteServer(seed=args.seed, notes=args.notes, port=0) as site:
        print(f"demo: sandbox site at {site.url} (images at {site.cdn_url})", flush=True)
        if args.gemini:
            from sandbox.gemini import GeminiEmulator

            with GeminiEmulator(port=0) as emulator:
                print(f"demo: Gemini emulator at {emulator.base_url}", flush=True)
                status = run_crawl(
                    args,
                    crawl_env(
                        site,
                        os.environ,
                        GEMINI_BASE_URL=emulator.base_url,
                        GEMINI_API_KEYS="demo:sandbox-demo-key",
                    ),
                )
        else:
            status = run_crawl(args, crawl_env(site, os.environ))
    print_summary(asyncio.run(summarize()))
    return status


if __name__ == "__main__":
    sys.exit(main())
