"""The main job on the bundled sandbox: `python -m sandbox.demo`.

Starts the offline XHS-style site (and, with `--gemini`, the Gemini emulator), runs
`scrapy crawl xhs` on a keyword with enrichment into the embedded MongoDB under
./data/mongo (or MONGO_URI). The crawl itself ends with the run summary (notes, images,
Gemini, deferred notes, refused inputs, the notes table, where data and report are:
crawler/extensions/run_summary.py); the demo adds what to do next.
Repeatable: a second run over the same seed is incremental (no image downloads, no
enrichment requests; one more note_stats row per note).

With `--gemini` after local runs, the crawl leaves the stored local results alone (the
notes did not change), so the demo then runs `scrapy crawl enrich -a include_local=1`
against the emulator, which upgrades them. Without `--gemini` it prints that command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pipelines.mongo import MongoSettings, close_databases, open_database
from sandbox.crawlenv import crawl_env
from sandbox.harness import ROOT, start_crawl
from sandbox.site import SiteServer

CRAWL_TIMEOUT_S = 1800
UPGRADE = {"include_local": "1"}
UPGRADE_COMMAND = ".venv/bin/scrapy crawl enrich -a include_local=1"


def run_spider(
    spider: str, spider_args: Mapping[str, str], args: argparse.Namespace, env: dict[str, str]
) -> int:
    """One ``scrapy crawl`` through the shared harness, printing its log here; files where
    the project keeps them (./data)."""
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        crawl = start_crawl(
            spider,
            spider_args,
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


async def local_results() -> int:
    """Stored notes whose enrichment is the local backend's (Gemini could upgrade them)."""
    from scrapy.utils.project import get_project_settings

    os.chdir(ROOT)
    _, db = await open_database(MongoSettings.from_settings(get_project_settings()))
    try:
        return await db.notes.count_documents(
            {"enrichment.status": "done", "enrichment.backend": "local"}
        )
    finally:
        await close_databases()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keyword", default="面经")
    parser.add_argument("--max-notes", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--notes", type=int, default=1000, help="size of the sandbox dataset")
    parser.add_argument("--gemini", action="store_true", help="enrich through the Gemini emulator")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    crawl_args = {"keywords": args.keyword, "max_notes": str(args.max_notes)}

    with SiteServer(seed=args.seed, notes=args.notes, port=0) as site:
        print(f"demo: sandbox site at {site.url} (images at {site.cdn_url})", flush=True)
        if args.gemini:
            from sandbox.gemini import GeminiEmulator

            with GeminiEmulator(port=0) as emulator:
                print(f"demo: Gemini emulator at {emulator.base_url}", flush=True)
                env = crawl_env(
                    site, os.environ, GEMINI_BASE_URL=emulator.base_url,
                    GEMINI_API_KEYS="demo:sandbox-demo-key",
                )  # fmt: skip
                status = run_spider("xhs", crawl_args, args, env)
                left = asyncio.run(local_results())
                if status == 0 and left:
                    print(f"demo: {left} stored notes have local results; upgrading them "
                          f"with Gemini: {UPGRADE_COMMAND}", flush=True)  # fmt: skip
                    status = run_spider("enrich", UPGRADE, args, env)
        else:
            status = run_spider("xhs", crawl_args, args, crawl_env(site, os.environ))
            left = asyncio.run(local_results())
            if left:
                print(f"demo: {left} notes have local results (rapidocr + extractive summary). "
                      f"With Gemini keys set, `{UPGRADE_COMMAND}` upgrades them "
                      "(`bash .ci/demo --gemini` does it against the emulator).")  # fmt: skip
    print("demo: browse the data: .venv/bin/python -m crawler.web   (http://127.0.0.1:8080)")
    print(f"demo: exit status {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
