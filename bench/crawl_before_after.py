"""Crawl throughput before and after the restructuring (issue 12), measured in one run.

Two git worktrees (``git worktree add --detach``, removed at the end; the main working
tree is not touched): the base commit (``--base``, default ``ac7283a``, main before the
restructuring) and the commit HEAD names when the run starts (``--after``), so
uncommitted edits in the main tree and commits landing during the run are not measured.
Both sides run the same workload as :mod:`bench.crawl_throughput`'s "ours": ``scrapy crawl
xhs -a note_ids=…`` over the same note pages of ONE sandbox site process, into ONE
MongoDB-wire server (a fresh database per crawl), ``ENRICH_BACKEND=off``, media pipeline
off (pipelines: incremental check + Mongo storage), ``CONCURRENT_REQUESTS`` =
``…_PER_DOMAIN`` = ``CONCURRENT_ITEMS`` = 8, no delays, no run report. Each crawl is a
subprocess of the same ``.venv`` interpreter with its cwd and ``PYTHONPATH`` set to its
checkout (checked: the crawl imports ``crawler`` from there). Only settings both
checkouts declare are passed; each side's ``EXTENSIONS`` is its own project's dict plus
its own stats-dump extension (base: ``bench.common.StatsDump``, after:
``sandbox.harness.StatsDump``; the same window and CPU measure).

Rounds are interleaved and the order alternates (before/after, then after/before), with
a 2 s pause before each crawl, so the machine's load, shared with other work, falls on
both sides alike (the median ratio of each order is reported too). Reported per
side: pages/s over the steady window (first to last response or item; best and median),
the crawl process's CPU time per page in that window; and the median of the rounds'
own ratios after/before, which decides: "has not dropped" when it is ≥ 0.95. A round
fails unless both crawls exit 0 and both stored every live note (counted in Mongo, per
crawl: each crawl asks for the ids of the UTC day it starts on, and a crawl that runs
past midnight may miss the notes reposted under new ids then; see :func:`storable`).
``python -m bench.crawl_before_after [--base REV] [--after REV] [--quick]`` (full mode:
12 rounds of 1,000 notes, run by hand; ``--quick``: 2 rounds of 200 notes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymongo

from bench.common import (
    ROOT,
    STORE_ONLY_PIPELINES,
    Check,
    SiteProcess,
    finish,
    note_refs,
    ratio,
    tail,
)
from bench.crawl_throughput import CONCURRENCY, cpu_ms_per_page, pages_per_s
from crawler.core.names import NOTES
from sandbox.dataset import Dataset
from sandbox.harness import NO_DELAYS, Crawl, CrawlResult, MongoServer, sandbox_env

NAME = "crawl_before_after"
DEFAULT_BASE = "ac7283a"
# The median ratio may fall this far below 1 and still count as "not dropped": the same
# crawl's pages/s moves more than that from round to round (crawl_throughput's seven
# rounds, on a quiet machine, went from 0.80 to 1.05 of their median), so a smaller gap
# in the median of paired rounds is not a difference this measurement can show; the
# slowdowns the restructuring could bring (an extra Mongo round trip or a second parse
# per item) cost well over 5 %.
TOLERANCE = 0.95
# A pause before each crawl, so that the last crawl's exit and its database's drop have
# settled and do not fall on the next crawl's start.
SETTLE_S = 2.0
# The stats-dump extension each checkout may carry, and the setting that turns it on.
STATS_DUMPS = {
    "sandbox.harness.StatsDump": "HARNESS_STATS_PATH",
    "bench.common.StatsDump": "BENCH_STATS_PATH",
}
# Run inside a checkout: where `crawler` comes from, its EXTENSIONS, its stats dump.
# The candidate stats dumps come as arguments.
PROBE = """
import importlib, json, sys, crawler, crawler.settings as s
found = []
for path in sys.argv[1:]:
    module, _, name = path.rpartition(".")
    try:
        getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        continue
    found.append(path)
print(json.dumps({"crawler": crawler.__file__, "extensions": s.EXTENSIONS, "dumps": found}))
"""


@dataclass(frozen=True)
class Side:
    """One checkout: its label ("before"/"after"), commit, directory, what the probe saw."""

    label: str
    rev: str
    commit: str
    path: Path
    extensions: dict[str, Any]
    stats_dump: str


def checkout_env(path: Path, base_env: Mapping[str, str]) -> dict[str, str]:
    """``base_env`` with only the checkout at ``path`` importable."""
    return {**base_env, "PYTHONPATH": str(path)}


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def worktree(rev: str, parent: Path) -> Iterator[tuple[str, Path]]:
    """A detached worktree of ``rev`` under ``parent``: (full commit id, path); removed
    with ``git worktree remove --force`` on the way out."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = parent / f"checkout-{commit[:10]}"
    git("worktree", "add", "--detach", str(path), commit)
    try:
        yield commit, path
    finally:
        git("worktree", "remove", "--force", str(path))


def probe(label: str, rev: str, commit: str, path: Path, base_env: Mapping[str, str]) -> Side:
    """Ask the checkout (its own interpreter run, cwd and PYTHONPATH) what it has."""
    env = checkout_env(path, base_env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *STATS_DUMPS],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{label} checkout {rev}: probe failed: {tail(done.stderr, 600)}")
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(seen["crawler"]).resolve().is_relative_to(path.resolve()):
        raise RuntimeError(f"{label} checkout imports crawler from {seen['crawler']}, not {path}")
    if not seen["dumps"]:
        raise RuntimeError(f"{label} checkout {rev} has no stats-dump extension")
    return Side(label, rev, commit, path, seen["extensions"], seen["dumps"][0])


def start(side: Side, refs: str, env: Mapping[str, str], work: Path, label: str) -> Crawl:
    """One ``scrapy crawl xhs`` of ``side``, with only settings both checkouts know."""
    files = {name: work / f"{label}.{name}" for name in ("log", "stdout", "stats")}
    for stale in files.values():
        stale.unlink(missing_ok=True)
    settings = {
        **NO_DELAYS,
        **CONCURRENCY,
        "ITEM_PIPELINES": STORE_ONLY_PIPELINES,
        "IMAGES_STORE": str(work / side.label / "images"),
        "MONGO_DATA_DIR": str(work / side.label / "mongo-embedded"),
        "MONGO_SPOOL_PATH": str(work / side.label / "spool" / "notes.jsonl"),
        "RUN_REPORT_DIR": "",
        "LOG_LEVEL": "INFO",
        "EXTENSIONS": json.dumps({**side.extensions, side.stats_dump: 900}),
        STATS_DUMPS[side.stats_dump]: str(files["stats"]),
    }
    command = [sys.executable, "-m", "scrapy", "crawl", "xhs", "-a", f"note_ids={refs}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    crawl_env = {**checkout_env(side.path, env), "MONGO_DATABASE": label}
    return Crawl(
        command,
        cwd=side.path,
        env=crawl_env,
        files={**files, "items": None},
        measure_rss=False,
        capture=True,
    )


def stored_notes(client: pymongo.MongoClient[Any], database: str) -> int:
    """Notes the crawl left in its database (then dropped: the server stays small)."""
    count = client[database][NOTES].count_documents({})
    client.drop_database(database)
    return count


def storable(dataset: Dataset, count: int, asked: int, ended: int) -> tuple[int, int]:
    """How many of the first ``count`` notes a crawl that asked for the ids of day
    ``asked`` and ended on day ``ended`` can store: every live one when the day did not
    change; across midnight, a note reposted in between has no page under its old id
    after it (fetched before midnight or not), so at least the live ones not reposted."""
    live = [i for i in range(count) if not dataset.is_deleted(i)]
    kept = sum(1 for i in live if not dataset.reposted(i, asked, ended))
    return kept, len(live)


def describe(run: CrawlResult, stored: int) -> dict[str, Any]:
    return {
        "exit_status": run.returncode,
        "finish_reason": run.stats.get("finish_reason"),
        "pages": run.stats.get("response_received_count", 0),
        "items": run.stats.get("item_scraped_count", 0),
        "notes_stored": stored,
        "elapsed_s": round(run.elapsed_s, 2),
        "steady_window_s": round(float(run.stats.get("bench/window_s") or 0), 2),
        "pages_per_s": pages_per_s(run),
        "crawl_cpu_ms_per_page": cpu_ms_per_page(run),
    }


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def side_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["pages_per_s"] for r in runs]
    cpu = [r["crawl_cpu_ms_per_page"] for r in runs]
    return {
        "pages_per_s_best": max(rates, default=0.0),
        "pages_per_s_median": round(statistics.median(rates), 2) if rates else 0.0,
        "crawl_cpu_ms_per_page_median": round(statistics.median(cpu), 3) if cpu else 0.0,
        "crawl_cpu_ms_per_page_least": min(cpu, default=0.0),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="the 'before' commit")
    parser.add_argument("--after", default="HEAD", help="the 'after' commit")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 200 notes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    count, rounds = (200, 2) if args.quick else (1000, 12)
    started = time.monotonic()
    loads = [load1()]
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ba-")))
        site = stack.enter_context(SiteProcess(seed=21, notes=count + 50))
        mongo = stack.enter_context(MongoServer(work / "mongo", process=True))
        client: pymongo.MongoClient[Any] = stack.enter_context(pymongo.MongoClient(mongo.uri))
        env = sandbox_env(site, MONGO_URI=mongo.uri, ENRICH_BACKEND="off")
        sides = [
            probe(label, rev, *stack.enter_context(worktree(rev, work)), env)
            for label, rev in (("before", args.base), ("after", args.after))
        ]
        live = sum(1 for i in range(count) if not site.dataset.is_deleted(i))
        for number in range(rounds):
            order = sides if number % 2 == 0 else sides[::-1]
            runs: dict[str, dict[str, Any]] = {}
            for side in order:
                label = f"r{number}_{side.label}"
                time.sleep(SETTLE_S)
                loads.append(load1())
                # The ids of the day the crawl starts on (the sandbox reposts a few notes
                # under new ids at midnight UTC), and what it can store, counted for
                # this crawl: a run that spans midnight fails no round for it.
                day = site.dataset.today()
                refs = note_refs([site.dataset.note(i, day) for i in range(count)])
                with start(side, refs, env, work, label) as crawl:
                    run = crawl.wait(timeout=900)
                least, most = storable(site.dataset, count, day, site.dataset.today())
                runs[side.label] = describe(run, stored_notes(client, label)) | {
                    "day": day,
                    "notes_storable": [least, most],
                }
                if run.returncode != 0:
                    print(tail(run.log))
            ok = all(
                r["exit_status"] == 0
                and r["notes_storable"][0] <= r["notes_stored"] <= r["notes_storable"][1]
                for r in runs.values()
            )
            results.append(
                {
                    "round": number,
                    "order": [s.label for s in order],
                    "ok": ok,
                    **runs,
                    "ratio_after_before": ratio(
                        runs["after"]["pages_per_s"], runs["before"]["pages_per_s"]
                    ),
                }
            )
            print(f"round {number}: {results[-1]}", flush=True)
    loads.append(load1())
    good = [r for r in results if r["ok"]]
    ratios = [r["ratio_after_before"] for r in good]
    median_ratio = round(statistics.median(ratios), 3) if ratios else 0.0
    by_order = {
        first: round(statistics.median(r["ratio_after_before"] for r in rows), 3)
        for first in ("before", "after")
        if (rows := [r for r in good if r["order"][0] == first])
    }
    summary = {s.label: side_summary([r[s.label] for r in good]) for s in sides}
    cpu_ratio = ratio(
        summary["after"]["crawl_cpu_ms_per_page_median"],
        summary["before"]["crawl_cpu_ms_per_page_median"],
    )
    figures = {
        "notes": count,
        "live_notes": live,
        "rounds": rounds,
        "rounds_ok": len(good),
        "checkouts": {s.label: {"rev": s.rev, "commit": s.commit} for s in sides},
        "stats_dump": {s.label: s.stats_dump for s in sides},
        "concurrency": CONCURRENCY,
        "pipelines": json.loads(STORE_ONLY_PIPELINES),
        "load_average_1min": {
            "min": min(loads),
            "median": statistics.median(loads),
            "max": max(loads),
        },
        "per_side": summary,
        "round_ratios_after_before": ratios,
        "median_round_ratio": median_ratio,
        "median_round_ratio_by_first_side": by_order,
        "crawl_cpu_per_page_after_over_before": cpu_ratio,
        "rounds_detail": results,
    }
    passed = len(good) == rounds and median_ratio >= TOLERANCE
    checks = [
        Check(
            "crawl throughput after the restructuring vs before (same run, interleaved)",
            f"median of the rounds' ratios after/before ≥ {TOLERANCE}, every round stored "
            "every live note on both sides",
            f"{median_ratio:.3f} over {len(good)}/{rounds} rounds "
            f"({summary['after']['pages_per_s_median']} vs "
            f"{summary['before']['pages_per_s_median']} pages/s, medians)",
            passed,
        )
    ]
    before, after = sides[0].commit[:7], sides[1].commit[:7]
    notes_out = [
        f"before = {sides[0].rev} ({before}), after = {sides[1].rev} ({after}); "
        f"{count} notes ({live} live) per crawl, {rounds} interleaved rounds",
        f"pages/s best: before {summary['before']['pages_per_s_best']}, after "
        f"{summary['after']['pages_per_s_best']}; median: before "
        f"{summary['before']['pages_per_s_median']}, after "
        f"{summary['after']['pages_per_s_median']}",
        f"rounds' ratios after/before: {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(median {median_ratio:.3f}, min {min(ratios, default=0):.2f}, "
        f"max {max(ratios, default=0):.2f}); median in the rounds where before ran first "
        f"{by_order.get('before')}, where after ran first {by_order.get('after')}",
        f"crawl process CPU per page (median): before "
        f"{summary['before']['crawl_cpu_ms_per_page_median']} ms, after "
        f"{summary['after']['crawl_cpu_ms_per_page_median']} ms (after/before {cpu_ratio})",
        f"load average (1 min) during the run: {min(loads)} to {max(loads)}, median "
        f"{statistics.median(loads)}, on {os.cpu_count()} cores",
    ]
    if len(good) < rounds:
        notes_out.append(
            f"{rounds - len(good)} round(s) failed (a crawl exited non-zero or did not store "
            "the live notes it could, notes_storable): see rounds_detail"
        )
    return finish(
        NAME, quick=args.quick, started=started, figures=figures, checks=checks, notes=notes_out
    )


if __name__ == "__main__":
    raise SystemExit(main())
