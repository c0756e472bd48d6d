"""Export memory: peak RSS of ``python -m crawler.export notes`` over 20,000 notes
against 2,000 (target: at most 1.3 times), for every format.

The notes (the stored shape of docs/schema.md, three images and a done or deferred
enrichment each) live on a MongoDB-wire server in a child process, so the figure is the
exporter's own memory; each export runs in a fresh process and its peak RSS is the
kernel's ``ru_maxrss`` for that process (``os.wait4``), not a sample.

``python -m bench.export_memory [--quick]`` (quick: 1,000 against 10,000).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient

from bench.common import ROOT, Check, finish, parse_args
from crawler.export import FORMATS
from sandbox.harness import MongoServer
from tests.export.factory import note_doc

TARGET = 1.3


def fill(uri: str, database: str, count: int) -> None:
    client: MongoClient = MongoClient(uri)
    coll = client[database].notes
    for start in range(0, count, 1000):
        coll.insert_many([note_doc(i) for i in range(start, min(count, start + 1000))])
    client.close()


def export_peak(
    uri: str, database: str, fmt: str, out: Path, data_dir: Path | None = None
) -> tuple[int, float]:
    """(peak RSS in bytes, seconds) of one export in a fresh process; with ``data_dir``
    (and ``uri`` empty) the export serves that directory itself, the embedded default."""
    env = {**os.environ, "MONGO_URI": uri, "MONGO_DATABASE": database}
    if data_dir is not None:
        env["MONGO_DATA_DIR"] = str(data_dir)
    command = [sys.executable, "-m", "crawler.export", "notes", "--format", fmt, "-o", str(out)]
    t0 = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"export {fmt} of {database} failed: {err.strip()[-500:]}")
    return usage.ru_maxrss * 1024, elapsed


def measure(tmp: Path, small: int, large: int) -> tuple[dict[str, object], list[Check]]:
    figures: dict[str, object] = {"notes_small": small, "notes_large": large}
    checks: list[Check] = []
    with MongoServer(tmp / "mongo", process=True) as server:
        for n in (small, large):
            fill(server.uri, f"n{n}", n)
        for fmt in FORMATS:
            peaks = {}
            for n in (small, large):
                out = tmp / f"notes-{n}.{fmt}"
                peak, seconds = export_peak(server.uri, f"n{n}", fmt, out)
                peaks[n] = peak
                figures[f"{fmt}_{n}_peak_rss_mb"] = round(peak / 2**20, 1)
                figures[f"{fmt}_{n}_seconds"] = round(seconds, 2)
                figures[f"{fmt}_{n}_file_mb"] = round(out.stat().st_size / 2**20, 2)
            r = peaks[large] / peaks[small]
            figures[f"{fmt}_ratio"] = round(r, 3)
            checks.append(
                Check(
                    f"{fmt} export peak RSS, {large:,} vs {small:,} notes",
                    f"≤ {TARGET}",
                    f"{r:.2f} ({peaks[small] / 2**20:.0f} → {peaks[large] / 2**20:.0f} MB)",
                    r <= TARGET,
                )
            )
    embedded = {}
    for n in (small, large):
        peak, seconds = export_peak("", f"n{n}", "parquet", tmp / "e.parquet", tmp / "mongo")
        embedded[n] = peak
        figures[f"embedded_parquet_{n}_peak_rss_mb"] = round(peak / 2**20, 1)
        figures[f"embedded_parquet_{n}_seconds"] = round(seconds, 2)
    figures["embedded_parquet_ratio"] = round(embedded[large] / embedded[small], 3)
    return figures, checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    small, large = (1000, 10_000) if args.quick else (2000, 20_000)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="export-mem-") as tmp:
        figures, checks = measure(Path(tmp), small, large)
    return finish(
        "export_memory",
        quick=args.quick,
        started=started,
        figures=figures,
        checks=checks,
        notes=[
            "peak RSS = ru_maxrss of the export process; the database runs in another process",
            "embedded_parquet_*: the same export with MONGO_URI empty, the export process "
            "serving the data directory itself; the in-process server's own memory "
            "(secantus, WiredTiger cache) is then part of the figure: reported, not checked",
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
