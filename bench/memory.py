"""Peak memory (RSS) of crawls that grow tenfold, and of local OCR on a small sample.

- A 1,000-note and a 10,000-note crawl (``--quick``: 200 and 2,000) of the sandbox site
  by note id, ``ENRICH_BACKEND=off`` and the media pipeline OFF, stored into a
  MongoDB-wire server in another process. Target: peak RSS ratio 10k / 1k ≤ 1.3 (memory
  does not grow with the number of notes).
- A crawl of a few notes with the media pipeline on and ``ENRICH_BACKEND=local``
  (rapidocr + extractive summary): the peak RSS of local OCR (reported).

RSS is sampled every 0.1 s with psutil over the crawl process and all its children
(scrapy-playwright starts Chromium at start-up even when no page needs it); the crawl
process alone is reported too. The 10,000 note ids do not fit in one command-line
argument, so both sizes run through ``sandbox.crawl_runner`` (same spider, same project
settings). ``python -m bench.memory [--quick]``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

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

NAME = "memory"
TARGET_RATIO = 1.3


def describe(run: CrawlResult, notes: int) -> dict[str, Any]:
    return {
        "notes_requested": notes,
        "notes_stored": run.stats.get("storage/upserted", 0) + run.stats.get("storage/modified", 0),
        "exit_status": run.returncode,
        "elapsed_s": round(run.elapsed_s, 1),
        "peak_rss_tree_mb": mb(run.peak_rss_bytes),
        "peak_rss_crawl_process_mb": mb(run.peak_rss_main_bytes),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    small, large = (200, 2000) if args.quick else (1000, 10000)
    ocr_notes = 3 if args.quick else 8
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp,
        SiteProcess(seed=31, notes=large + 100) as site,
        MongoServer(Path(tmp) / "mongo", process=True) as mongo,
    ):
        work = Path(tmp)
        for size in (small, large):
            notes = [site.dataset.note(i) for i in range(size)]
            env = sandbox_env(site, MONGO_URI=mongo.uri, MONGO_DATABASE=f"mem{size}",
                            ENRICH_BACKEND="off")  # fmt: skip
            run = run_crawl(
                "xhs",
                {"note_ids": note_refs(notes)},
                env,
                workdir=work,
                label=f"crawl{size}",
                settings={"ITEM_PIPELINES": STORE_ONLY_PIPELINES},
                feed=False,
                measure_rss=True,
                use_runner=True,
            )
            if run.returncode != 0:
                print(tail(run.log))
            runs[str(size)] = describe(run, size)
            print(f"{size} notes: {runs[str(size)]}", flush=True)
        candidates = (site.dataset.note(i) for i in range(len(site.dataset)))
        sample = list(islice((n for n in candidates if n.type == "normal"), ocr_notes + 2))
        sample = [n for n in sample if not site.dataset.is_deleted(n.index)][:ocr_notes]
        env = sandbox_env(
            site, MONGO_URI=mongo.uri, MONGO_DATABASE="memocr", ENRICH_BACKEND="local"
        )
        ocr = run_crawl(
            "xhs",
            {"note_ids": note_refs(sample)},
            env,
            workdir=work,
            label="ocr",
            measure_rss=True,
        )
        if ocr.returncode != 0:
            print(tail(ocr.log))
        ocr_figures = {
            **describe(ocr, len(sample)),
            "images": ocr.stats.get("media/images_ok", 0),
            "enriched_local": ocr.stats.get("enrich/done", 0),
        }
        print(f"local OCR: {ocr_figures}", flush=True)

    a, b = runs[str(small)], runs[str(large)]
    tree_ratio = ratio(b["peak_rss_tree_mb"], a["peak_rss_tree_mb"])
    main_ratio = ratio(b["peak_rss_crawl_process_mb"], a["peak_rss_crawl_process_mb"])
    complete = all(r["notes_stored"] > 0.95 * r["notes_requested"] for r in (a, b))
    figures = {
        "media": "off",
        "enrichment": "off",
        "crawls": runs,
        "ratio_tree": tree_ratio,
        "ratio_crawl_process": main_ratio,
        "local_ocr": ocr_figures,
    }
    checks = [
        Check(
            f"peak RSS, {large:,}-note crawl / {small:,}-note crawl (process tree)",
            f"≤ {TARGET_RATIO}",
            f"{b['peak_rss_tree_mb']} / {a['peak_rss_tree_mb']} MB = {tree_ratio}",
            complete and tree_ratio <= TARGET_RATIO,
        ),
        Check(
            f"peak RSS, {large:,}-note crawl / {small:,}-note crawl (crawl process alone)",
            f"≤ {TARGET_RATIO}",
            f"{b['peak_rss_crawl_process_mb']} / {a['peak_rss_crawl_process_mb']} MB "
            f"= {main_ratio}",
            complete and main_ratio <= TARGET_RATIO,
        ),
        Check(
            f"peak RSS of a crawl with local OCR ({ocr_figures['images']} images)",
            "reported",
            f"{ocr_figures['peak_rss_tree_mb']} MB (crawl process "
            f"{ocr_figures['peak_rss_crawl_process_mb']} MB)",
            ocr_figures["enriched_local"] == len(sample),
        ),
    ]
    return finish(NAME, quick=args.quick, started=started, figures=figures, checks=checks)


if __name__ == "__main__":
    raise SystemExit(main())
