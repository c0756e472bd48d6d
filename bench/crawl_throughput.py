"""Crawl throughput: notes/s for crawl + parse + store vs a bare Scrapy spider.

Same run, same sandbox site (in its own process), same note pages, same concurrency
(``CONCURRENT_REQUESTS`` = ``CONCURRENT_REQUESTS_PER_DOMAIN`` = ``CONCURRENT_ITEMS`` = 8,
no delay):

- ours: ``scrapy crawl xhs -a note_ids=…`` with ``ENRICH_BACKEND=off`` and the media
  pipeline OFF (pipelines: incremental check + Mongo storage), into a MongoDB-wire
  server;
- bare: ``scrapy runspider bench/bare_spider.py`` outside the project: downloads the
  same pages and does nothing else.

Rate = note pages answered / the steady window (first response to last response or
scraped item); the whole-run rate (Scrapy's ``elapsed_time_seconds``: Chromium launch,
MongoDB connection and the final flush included) and the start-up time are reported
too. Full mode repeats the pair seven times, interleaved, and keeps each side's best
(the median of the rounds' own ratios is reported too), and a stricter bare spider
that also gets the project's garbage-collector tuning is measured in each round;
the crawl process's CPU time per page in the window is reported too (less sensitive to
load). Informational: the same crawl with no item pipeline at all (crawl + parse), with
the incremental check alone and with storage alone (what each Mongo-backed stage costs
per page), and with the media pipeline ON (every picture downloaded, sniffed,
downscaled).
``python -m bench.crawl_throughput [--quick]``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    STORE_ONLY_PIPELINES,
    Check,
    SiteProcess,
    finish,
    note_refs,
    parse_args,
    ratio,
    run_crawl,
    tail,
)
from crawler.settings import ITEM_PIPELINES as DEFAULT_PIPELINES
from crawler.urls import note_url
from sandbox.harness import STATS_DUMP, CrawlResult, MongoServer, sandbox_env

NAME = "crawl_throughput"
INCREMENTAL = "pipelines.incremental.IncrementalPipeline"
STORAGE = "pipelines.storage.MongoStoragePipeline"
TARGET = 0.6
CONCURRENCY = {
    "CONCURRENT_REQUESTS": "8",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "8",
    "CONCURRENT_ITEMS": "8",
}
# Informational, stricter: a bare spider with the project's garbage-collector tuning
# too (crawler.extensions.CollectorTuning), so that ratio measures parsing and storing
# only, not the tuning of the crawl process.
TUNED_BARE_SETTINGS = {
    **CONCURRENCY,
    "EXTENSIONS": json.dumps({STATS_DUMP: 900, "crawler.extensions.CollectorTuning": 10}),
}


def pages_per_s(run: CrawlResult) -> float:
    """Steady rate: pages over the window from the first response to the last response
    or item (start-up and shutdown excluded; both are reported apart)."""
    window = float(run.stats.get("bench/window_s") or run.elapsed_s)
    return round(run.stats.get("response_received_count", 0) / window, 2)


def describe(run: CrawlResult) -> dict[str, Any]:
    return {
        "exit_status": run.returncode,
        "pages": run.stats.get("response_received_count", 0),
        "notes_stored": run.stats.get("storage/upserted", 0) + run.stats.get("storage/modified", 0),
        "items": run.stats.get("item_scraped_count", 0),
        "images_ok": run.stats.get("media/images_ok", 0),
        "elapsed_s": round(run.elapsed_s, 2),
        "steady_window_s": round(float(run.stats.get("bench/window_s") or 0), 2),
        "startup_and_shutdown_s": round(
            run.elapsed_s - float(run.stats.get("bench/window_s") or 0), 2
        ),
        "pages_per_s": pages_per_s(run),
        "pages_per_s_whole_run": round(
            run.stats.get("response_received_count", 0) / run.elapsed_s, 2
        ),
        "notes_per_s": round(run.stats.get("item_scraped_count", 0) / run.elapsed_s, 2),
        "crawl_cpu_ms_per_page": cpu_ms_per_page(run),
    }


def cpu_ms_per_page(run: CrawlResult) -> float:
    """The crawl process's CPU time per page in the steady window: what the crawl itself
    costs, less sensitive than pages/s to what else the machine runs."""
    pages = run.stats.get("response_received_count", 0)
    cpu = run.stats.get("bench/window_cpu_s")
    return round(1000 * float(cpu) / pages, 3) if pages and cpu is not None else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    count = 200 if args.quick else 1000
    media_count = 40 if args.quick else 150
    repeats = 1 if args.quick else 7
    started = time.monotonic()
    ours_runs: list[dict[str, Any]] = []
    bare_runs: list[dict[str, Any]] = []
    parse_runs: list[dict[str, Any]] = []
    tuned_bare_runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp,
        SiteProcess(seed=21, notes=count + 50) as site,
        MongoServer(Path(tmp) / "mongo", process=True) as mongo,
    ):
        work = Path(tmp)
        notes = [site.dataset.note(i) for i in range(count)]
        urls_file = work / "urls.txt"
        urls_file.write_text(
            "\n".join(note_url(site.url, n.note_id, n.xsec_token, "pc_feed") for n in notes)
        )
        env = sandbox_env(site, MONGO_URI=mongo.uri, ENRICH_BACKEND="off")

        def ours(label: str, pipelines: str, subset: Sequence[Any] = notes) -> dict[str, Any]:
            run = run_crawl(
                "xhs",
                {"note_ids": note_refs(subset)},
                {**env, "MONGO_DATABASE": label},
                workdir=work,
                label=label,
                settings={**CONCURRENCY, "ITEM_PIPELINES": pipelines},
                feed=False,
            )
            if run.returncode != 0:
                print(tail(run.log))
            return describe(run)

        def bare(label: str, settings: dict[str, str]) -> dict[str, Any]:
            run = run_crawl(
                "bare",
                {"urls_file": str(urls_file)},
                env,
                workdir=work,
                label=label,
                settings=settings,
                feed=False,
                spider_file=ROOT / "bench" / "bare_spider.py",
            )
            if run.returncode != 0:
                print(tail(run.log))
            return describe(run)

        for rep in range(repeats):
            bare_runs.append(bare(f"bare{rep}", CONCURRENCY))
            tuned_bare_runs.append(bare(f"tuned_bare{rep}", TUNED_BARE_SETTINGS))
            ours_runs.append(ours(f"ours{rep}", STORE_ONLY_PIPELINES))
            parse_runs.append(ours(f"parse{rep}", "{}"))
            print(
                f"round {rep}: bare {bare_runs[-1]}, ours {ours_runs[-1]}, "
                f"parse only {parse_runs[-1]}, tuned bare {tuned_bare_runs[-1]}",
                flush=True,
            )
        # Where the time goes: each Mongo-backed stage alone on top of parsing.
        stages = {
            "incremental_only": ours("incremental", json.dumps({INCREMENTAL: 100})),
            "storage_only": ours("storage", json.dumps({STORAGE: 400})),
        }
        media_figures = ours("media", json.dumps(DEFAULT_PIPELINES), notes[:media_count])

    best_ours = max(r["pages_per_s"] for r in ours_runs)
    best_bare = max(r["pages_per_s"] for r in bare_runs)
    best_parse = max(r["pages_per_s"] for r in parse_runs)
    cpu_ours = min(r["crawl_cpu_ms_per_page"] for r in ours_runs)
    cpu_bare = min(r["crawl_cpu_ms_per_page"] for r in bare_runs)
    best_tuned = max(r["pages_per_s"] for r in tuned_bare_runs)
    cpu_tuned = min(r["crawl_cpu_ms_per_page"] for r in tuned_bare_runs)
    share = ratio(best_ours, best_bare)
    paired = statistics.median(
        ratio(o["pages_per_s"], b["pages_per_s"]) for o, b in zip(ours_runs, bare_runs, strict=True)
    )
    stage_ms = {
        name: round(1000 / run["pages_per_s"] - 1000 / best_parse, 2)
        for name, run in stages.items()
    }
    live = sum(1 for i in range(count) if not site.dataset.is_deleted(i))
    stored_ok = all(r["notes_stored"] == live and r["exit_status"] == 0 for r in ours_runs)
    figures = {
        "notes": count,
        "live_notes": live,
        "concurrency": CONCURRENCY,
        "media": "off (informational run with media on below)",
        "ours": ours_runs,
        "bare": bare_runs,
        "ours_best_pages_per_s": best_ours,
        "bare_best_pages_per_s": best_bare,
        "ratio": share,
        "median_round_ratio": round(paired, 3),
        "parse_only": parse_runs,
        "parse_only_best_pages_per_s": best_parse,
        "parse_only_ratio": ratio(best_parse, best_bare),
        "stages_alone": stages,
        "stage_cost_ms_per_page_over_parse_only": stage_ms,
        "parse_cost_ms_per_page_over_bare": round(1000 / best_parse - 1000 / best_bare, 2),
        "crawl_cpu_ms_per_page_best": {"ours": cpu_ours, "bare": cpu_bare},
        "crawl_cpu_ratio": ratio(cpu_bare, cpu_ours),
        "tuned_bare": tuned_bare_runs,
        "tuned_bare_best_pages_per_s": best_tuned,
        "ratio_to_tuned_bare": ratio(best_ours, best_tuned),
        "crawl_cpu_ratio_to_tuned_bare": ratio(cpu_tuned, cpu_ours),
        "with_media_on": media_figures,
    }
    checks = [
        Check(
            "crawl + parse + store vs a bare Scrapy spider (media off)",
            f"≥ {TARGET:.0%} of the bare spider's pages/s",
            f"{best_ours} vs {best_bare} pages/s = {share:.0%}",
            stored_ok and share >= TARGET,
        )
    ]
    notes_out = [
        f"median of the rounds' own ratios (ours / bare of the same round): {paired:.0%}",
        f"crawl process CPU per page (least of the rounds): ours {cpu_ours} ms, bare "
        f"{cpu_bare} ms: the bare spider's share is {ratio(cpu_bare, cpu_ours):.0%}",
        f"stricter, against a bare spider with the project's GC tuning too: {best_ours} vs "
        f"{best_tuned} pages/s = {ratio(best_ours, best_tuned):.0%}, CPU per page "
        f"{cpu_ours} vs {cpu_tuned} ms = {ratio(cpu_tuned, cpu_ours):.0%}",
        f"crawl + parse without any pipeline (no storage): {best_parse} pages/s = "
        f"{ratio(best_parse, best_bare):.0%} of the bare spider",
        "cost per page over parse-only, each stage alone: "
        + ", ".join(f"{k} {v} ms" for k, v in stage_ms.items()),
        f"with the media pipeline on: {media_figures['notes_per_s']} notes/s "
        f"({media_figures['images_ok']} images for {media_figures['items']} notes)",
    ]
    if not stored_ok:
        notes_out.append("not every live note was stored once: see the crawl logs")
    return finish(
        NAME, quick=args.quick, started=started, figures=figures, checks=checks, notes=notes_out
    )


if __name__ == "__main__":
    raise SystemExit(main())
