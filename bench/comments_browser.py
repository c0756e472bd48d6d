"""Comments through the browser: comments per minute, and peak RSS as the notes grow.

Two crawls of the sandbox site by note id with ``-a comments=all -a replies=all`` (every
thread read in Chromium through the note page's own JavaScript), ``ENRICH_BACKEND=off``
and media off, stored into a MongoDB-wire server in another process: 20 and 200 notes
with comments (``--quick``: 10 and 60; the small crawl is every tenth note of the large
one, with the note of the biggest thread among them). Figures:

- comments (and replies) stored per minute of the larger crawl, wall clock from the
  crawl's start (Chromium's start-up included) — reported;
- peak RSS of the process tree (crawl process, Chromium and its renderers) of the larger
  crawl over the smaller one. Target ≤ 1.3: memory does not grow with the number of
  threads read, which means each note's page is closed once its thread is read
  (pages opened, by scrapy-playwright's counter, and closed are reported and
  must match);
- every stored thread equals ``Dataset.comments`` (a throughput bench of a wrong crawl
  would be worthless).

``python -m bench.comments_browser [--quick]``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.common import (
    STORE_ONLY_PIPELINES,
    Check,
    SiteProcess,
    finish,
    mb,
    note_refs,
    parse_args,
    ratio,
    run_crawl,
    tail,
)
from sandbox.harness import CrawlResult, MongoServer, sandbox_env

NAME = "comments_browser"
TARGET_RATIO = 1.3
SEED, SITE_NOTES = 31, 1500


def notes_with_comments(dataset: Any, count: int) -> list[Any]:
    """The first ``count`` live notes that have a thread, in dataset order."""
    picked = []
    for index in range(len(dataset)):
        if dataset.is_deleted(index):
            continue
        note = dataset.note(index)
        if dataset.comments(note.note_id):
            picked.append(note)
            if len(picked) == count:
                break
    return picked


def thread_ids(dataset: Any, note_id: str) -> set[str]:
    return {c.comment_id for root in dataset.comments(note_id) for c in (root, *root.replies)}


def describe(run: CrawlResult, notes: list[Any], stored: int, exact: int) -> dict[str, Any]:
    minutes = max(run.elapsed_s, 1e-9) / 60
    return {
        "notes": len(notes),
        "exit_status": run.returncode,
        "elapsed_s": round(run.elapsed_s, 1),
        "comments_stored": stored,
        "threads_exact": exact,
        "comments_per_minute": round(stored / minutes),
        "comment_api_answers": run.stats.get("comments/pages", 0),
        "reloads": sum(v for k, v in run.stats.items() if k.startswith("comments/reloads/")),
        "pages_opened": run.stats.get("playwright/page_count", 0),
        "pages_closed": run.stats.get("comments/pages_closed", 0),
        "pages_max_concurrent": run.stats.get("playwright/page_count/max_concurrent", 0),
        "peak_rss_tree_mb": mb(run.peak_rss_bytes),
        "peak_rss_crawl_process_mb": mb(run.peak_rss_main_bytes),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    small, large = (10, 60) if args.quick else (20, 200)
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-comments-") as tmp,
        SiteProcess(seed=SEED, notes=SITE_NOTES) as site,
        MongoServer(Path(tmp) / "mongo", process=True) as mongo,
    ):
        work = Path(tmp)
        picked = notes_with_comments(site.dataset, large)
        client: MongoClient = MongoClient(mongo.uri)
        sizes = {n.note_id: len(thread_ids(site.dataset, n.note_id)) for n in picked}
        biggest = max(picked, key=lambda n: sizes[n.note_id])
        # The small crawl is a sample of the large one that holds its biggest thread: a
        # thread is held whole while it is read, so both peaks include that one; what
        # the ratio measures is what more notes add.
        sample = [biggest, *(n for n in picked[:: large // small] if n is not biggest)][:small]
        for size, notes in ((small, sample), (large, picked)):
            database = f"comments{size}"
            env = sandbox_env(site, MONGO_URI=mongo.uri, MONGO_DATABASE=database,
                              ENRICH_BACKEND="off")  # fmt: skip
            run = run_crawl(
                "xhs",
                {"note_ids": note_refs(notes), "comments": "all", "replies": "all"},
                env,
                workdir=work,
                label=f"comments{size}",
                settings={"ITEM_PIPELINES": STORE_ONLY_PIPELINES},
                feed=False,
                measure_rss=True,
                use_runner=True,
                timeout=3600,
            )
            if run.returncode != 0:
                print(tail(run.log))
            db = client[database]
            exact = sum(
                {d["_id"] for d in db.comments.find({"note_id": n.note_id}, {"_id": 1})}
                == thread_ids(site.dataset, n.note_id)
                for n in notes
            )
            runs[str(size)] = describe(run, notes, db.comments.count_documents({}), exact)
            print(f"{size} notes: {runs[str(size)]}", flush=True)
        client.close()

    a, b = runs[str(small)], runs[str(large)]
    tree_ratio = ratio(b["peak_rss_tree_mb"], a["peak_rss_tree_mb"])
    main_ratio = ratio(b["peak_rss_crawl_process_mb"], a["peak_rss_crawl_process_mb"])
    exact = all(r["threads_exact"] == r["notes"] and r["exit_status"] == 0 for r in (a, b))
    closed = all(r["pages_closed"] == r["pages_opened"] for r in (a, b))
    figures = {
        "media": "off",
        "enrichment": "off",
        "crawls": runs,
        "ratio_tree": tree_ratio,
        "ratio_crawl_process": main_ratio,
    }
    checks = [
        Check(
            f"comments per minute through the browser ({large} notes, every thread exact)",
            "reported",
            f"{b['comments_per_minute']:,}/min ({b['comments_stored']:,} comments in "
            f"{b['elapsed_s']} s, {b['comment_api_answers']:,} API answers)",
            exact,
        ),
        Check(
            f"peak RSS, {large}-note / {small}-note comment crawl (process tree)",
            f"≤ {TARGET_RATIO}",
            f"{b['peak_rss_tree_mb']} / {a['peak_rss_tree_mb']} MB = {tree_ratio}",
            exact and closed and tree_ratio <= TARGET_RATIO,
        ),
        Check(
            f"peak RSS, {large}-note / {small}-note comment crawl (crawl process alone)",
            f"≤ {TARGET_RATIO}",
            f"{b['peak_rss_crawl_process_mb']} / {a['peak_rss_crawl_process_mb']} MB "
            f"= {main_ratio}",
            exact and main_ratio <= TARGET_RATIO,
        ),
    ]
    return finish(NAME, quick=args.quick, started=started, figures=figures, checks=checks)


if __name__ == "__main__":
    raise SystemExit(main())
