"""Run every benchmark (and the chaos run), then regenerate docs/benchmarks.md.

``python -m bench.run_all`` (full sizes: about half an hour on 2 cores) or
``python -m bench.run_all --quick``. Each benchmark runs in its own process, one after
the other; its output is shown and its ``VERDICT:`` line kept. The document is built
from bench/results/*.json (the figures, the machine) and bench/analysis.md (the
hand-written reading of the figures: causes of missed targets), so it always shows
what the last run measured. ``--render`` rebuilds the document without running anything.
Caveat: bench/storage_writes.py and bench/emulator_rps.py (other owners) write the same
``<name>.json`` in both modes, so a ``--quick`` run replaces their full figures.
A benchmark marked ``by_hand`` (crawl_before_after: two checkouts, many rounds) runs its
full mode only when named with ``--only``; a full run shows its last full result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, machine, result_path

DOC = ROOT / "docs" / "benchmarks.md"
ANALYSIS = ROOT / "bench" / "analysis.md"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    full_args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    ours: bool = True  # writes the common result format (bench.common.finish)
    by_hand: bool = False  # full mode only run by hand: a full run_all shows its last result
    claim: str = ""  # for the others' benchmarks: their claim and target, as documented
    target: str = ""


BENCHES = (
    Bench("requests_per_note", "Gemini requests per note"),
    Bench("enrich_throughput", "Enrichment throughput"),
    Bench("crawl_throughput", "Crawl throughput"),
    Bench("crawl_before_after", "Crawl throughput before/after restructuring", by_hand=True),
    Bench("memory", "Memory"),
    Bench("comments_browser", "Comments through the browser"),
    Bench("retry_timing", "Retry timing after a 429"),
    Bench("capacity", "Enrichment capacity (packed requests)"),
    Bench("workers", "Enrich workers sharing one quota"),
    Bench("export_memory", "Export memory"),
    Bench("web_pages", "Web app pages on 20,000 notes"),
    Bench("chaos", "Chaos run", full_args=("--full",), quick_args=()),
    Bench(
        "storage_writes",
        "Storage writes",
        quick_args=("--notes", "300", "--rss-notes", "2000"),
        ours=False,
        claim="batched writes vs one update_one per note (same server, same run)",
        target="batched ≥ 5× faster",
    ),
    Bench(
        "emulator_rps",
        "Gemini emulator requests/s",
        quick_args=("--requests", "300"),
        ours=False,
        claim="emulator requests/s at zero latency",
        target="≥ 200 requests/s",
    ),
)


@dataclass
class Outcome:
    bench: Bench
    exit_status: int
    seconds: float
    verdict_line: str
    result: dict[str, Any] | None


def result_file(bench: Bench, quick: bool) -> Path:
    """Where a benchmark leaves its result (others' benchmarks: always ``<name>.json``)."""
    return result_path(bench.name, quick) if bench.ours else RESULTS / f"{bench.name}.json"


def verdict_file(bench: Bench, quick: bool) -> Path:
    """The last VERDICT line of a benchmark that does not write the common format."""
    return RESULTS / (f"{bench.name}.quick.verdict.txt" if quick else f"{bench.name}.verdict.txt")


def verdict_of(bench: Bench, line: str) -> str | None:
    """``VERDICT: PASS|FAIL <name>: …`` from a benchmark's verdict line, else None.

    Ours print exactly that; others' print ``PASS: …``, ``FAIL: …`` or ``verdict: …``.
    """
    text = line.strip()
    if text.startswith("VERDICT:"):
        return text
    head, sep, rest = text.partition(":")
    if not sep:
        return None
    if head.lower() == "verdict":
        word, _, rest = rest.strip().partition(" ")
        head = word
    if head.upper() in ("PASS", "FAIL"):
        return f"VERDICT: {head.upper()} {bench.name}: {rest.strip()}"
    return None


def run_one(bench: Bench, quick: bool) -> Outcome:
    """Run a benchmark, echoing its output; keep its VERDICT line and JSON result."""
    if not (ROOT / "bench" / f"{bench.name}.py").exists():
        return Outcome(bench, -1, 0.0, f"VERDICT: FAIL {bench.name}: not present", None)
    command = [
        sys.executable,
        "-m",
        f"bench.{bench.name}",
        *(bench.quick_args if quick else bench.full_args),
    ]
    print(f"\n=== {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    verdict = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        verdict = verdict_of(bench, line) or verdict
    status = proc.wait()
    seconds = time.monotonic() - started
    if not bench.ours and verdict:
        verdict_file(bench, quick).write_text(verdict + "\n")
    result = None
    path = result_file(bench, quick)
    if path.exists() and path.stat().st_mtime >= time.time() - seconds - 1:
        result = json.loads(path.read_text())
    return Outcome(
        bench,
        status,
        seconds,
        verdict or f"VERDICT: FAIL {bench.name}: no verdict line (exit {status})",
        result,
    )


def stored(bench: Bench, quick: bool) -> Outcome:
    """A benchmark not run this time, from its last result file (if any)."""
    path = result_file(bench, quick)
    if not path.exists():
        if not bench.ours and verdict_file(bench, quick).exists():
            line = verdict_file(bench, quick).read_text().strip()
            return Outcome(bench, 0 if line.startswith("VERDICT: PASS") else 1, 0.0, line, None)
        return Outcome(bench, -1, 0.0, f"VERDICT: FAIL {bench.name}: never run", None)
    result = json.loads(path.read_text())
    verdict = str(result.get("verdict", "?")).upper()
    when = result.get("finished_at") or result.get("when") or "an earlier run"
    line = f"VERDICT: {verdict} {bench.name}: stored result of {when}"
    if bench.ours and result.get("checks"):
        summary = "; ".join(f"{c['claim']}: {c['measured']}" for c in result["checks"])
        line = f"VERDICT: {verdict} {bench.name}: {summary}"
    elif verdict_file(bench, quick).exists():
        line = verdict_file(bench, quick).read_text().strip()
    return Outcome(
        bench, 0 if verdict == "PASS" else 1, float(result.get("duration_s", 0)), line, result
    )


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_rows(outcomes: Sequence[Outcome]) -> list[str]:
    rows = ["| benchmark | claim | target | measured | verdict |", "|---|---|---|---|---|"]
    for o in outcomes:
        checks = (o.result or {}).get("checks") if o.bench.ours else None
        if checks:
            for c in checks:
                rows.append(
                    f"| {o.bench.title} | {_cell(c['claim'])} | {_cell(c['target'])} | "
                    f"{_cell(c['measured'])} | {'PASS' if c['passed'] else '**FAIL**'} |"
                )
        else:
            verdict = o.verdict_line.removeprefix("VERDICT:").strip()
            word, _, rest = verdict.partition(" ")
            rest = rest.removeprefix(f"{o.bench.name}:").strip()
            shown = "PASS" if word.upper() == "PASS" else "**FAIL**"
            rows.append(
                f"| {o.bench.title} | {_cell(o.bench.claim)} | {_cell(o.bench.target)} | "
                f"{_cell(rest)} | {shown} |"
            )
    return rows


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info.get('cpu_count')} × {info.get('cpu_model')}, {info.get('ram_gb')} GB RAM, "
        f"Python {info.get('python')}, {info.get('platform')}; shared with other work "
        "(each benchmark's load average at start is in its details)"
    )


def section(o: Outcome) -> list[str]:
    module = __import__(f"bench.{o.bench.name}", fromlist=["__doc__"])
    doc = (module.__doc__ or "").strip()
    args = " ".join(o.bench.full_args)
    took = f" ({o.seconds:.0f} s, exit status {o.exit_status})" if o.seconds else ""
    lines = [
        f"### {o.bench.title}",
        "",
        f"`python -m bench.{o.bench.name}{(' ' + args) if args else ''}`{took}",
        "",
        doc,
        "",
    ]
    result = o.result or {}
    if o.bench.ours:
        lines += [f"- {note}" for note in result.get("notes") or []]
    if result:
        figures = result.get("figures") if o.bench.ours else result
        lines += [
            "",
            "<details><summary>figures</summary>",
            "",
            "```json",
            json.dumps(figures, indent=1, ensure_ascii=False, default=str),
            "```",
            "",
            "</details>",
            "",
        ]
    load = ((result.get("machine") or {}) if o.bench.ours else {}).get("load_average_at_start")
    if load:
        lines += [f"Load average when it started: {', '.join(map(str, load))}.", ""]
    lines += [f"`{o.verdict_line}`", ""]
    return lines


def run_span(outcomes: Sequence[Outcome]) -> str:
    """When the shown results were measured, and how long the benchmarks took."""
    times = sorted(
        str(o.result.get("finished_at") or o.result.get("when"))
        for o in outcomes
        if o.result and (o.result.get("finished_at") or o.result.get("when"))
    )
    total = sum(o.seconds for o in outcomes)
    span = f"{times[0]} to {times[-1]}" if times else datetime.now(UTC).isoformat()
    return f"results measured {span} ({total / 60:.0f} min of benchmarks)"


def render(outcomes: Sequence[Outcome], quick: bool, info: dict[str, Any]) -> str:
    mode = "quick (`--quick`)" if quick else "full"
    command = "python -m bench.run_all" + (" --quick" if quick else "")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run_all.py` from `bench/results/*.json` and `bench/analysis.md`;",
        "do not edit by hand. None of these is a unit test: they measure, print their figures",
        "and a one-line verdict, and write `bench/results/<name>.json`.",
        "",
        f"- **Machine:** {machine_line(info)}",
        f"- **Run:** {run_span(outcomes)}, {mode} sizes",
        f"- **Reproduce:** `{command}` (each benchmark alone: `python -m bench.<name> [--quick]`; "
        "the chaos run: `python -m bench.chaos [--full]`)",
        "",
        "## Summary",
        "",
        *summary_rows(outcomes),
        "",
    ]
    if ANALYSIS.exists():
        lines += [ANALYSIS.read_text().strip(), ""]
    lines += ["## Details", ""]
    for o in outcomes:
        lines += section(o)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs of every benchmark")
    parser.add_argument("--only", nargs="+", help="run only these benchmarks (names)")
    parser.add_argument(
        "--render", action="store_true", help="run nothing: rebuild the document from the results"
    )
    args = parser.parse_args(argv)
    default = (b.name for b in BENCHES if args.quick or not b.by_hand)
    wanted = set() if args.render else set(args.only or default)
    outcomes = [
        run_one(b, args.quick) if b.name in wanted else stored(b, args.quick) for b in BENCHES
    ]
    measured_on = [o.result["machine"] for o in outcomes if o.bench.ours and o.result]
    DOC.write_text(render(outcomes, args.quick, measured_on[0] if measured_on else machine()))
    print(f"\nwrote {DOC.relative_to(ROOT)}")
    for o in outcomes:
        print(o.verdict_line)
    return 0 if all(o.exit_status == 0 for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
