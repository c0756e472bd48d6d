"""Export memory: peak RSS of ``python -m crawler.export notes`` over 20,000 notes
against 2,000 (target: at most 1.3 times), for every format, over both stores.

The notes (the stored shape of docs/schema.md, three images and a done or deferred
enrichment each) are written once to a data directory. Each export runs in a fresh
process, twice per format and size:

- ``<fmt>_*``: against that directory served by a MongoDB-wire server in another
  process (``MONGO_URI``); the peak is the kernel's ``ru_maxrss`` of the export process
  (``os.wait4``), not a sample;
- ``embedded_<fmt>_*``: the default, ``MONGO_URI`` empty and nobody serving the
  directory, so the export starts the embedded server itself (as a child process, see
  crawler/export/_store.py). ``ru_maxrss`` from ``wait4`` would then be the larger of
  the export and its server child (Linux folds a reaped child's peak into its parent's),
  so both peaks are the kernel's ``VmHWM`` high-water mark of each process, read from
  /proc every 20 ms until it exits. The export's is checked; the server's is reported:
  secantus builds a query's whole result in the serving process, so it grows with the
  collection whichever process serves it.

``python -m bench.export_memory [--quick]`` (quick: 1,000 against 10,000).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient

from bench.common import ROOT, Check, finish, parse_args
from crawler.core.names import NOTES
from crawler.export import FORMATS
from sandbox.harness import MongoServer
from tests.export.factory import note_doc

TARGET = 1.3


def fill(uri: str, database: str, count: int) -> None:
    client: MongoClient = MongoClient(uri)
    coll = client[database][NOTES]
    for start in range(0, count, 1000):
        coll.insert_many([note_doc(i) for i in range(start, min(count, start + 1000))])
    client.close()


def _hwm(pid: int) -> int | None:
    """The kernel's peak RSS (``VmHWM``) of a live process, in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _children(pid: int) -> list[int]:
    """Child processes of ``pid``, whichever of its threads started them."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def export_peak(
    uri: str, database: str, fmt: str, out: Path, data_dir: Path | None = None
) -> dict[str, float]:
    """``{"export", "seconds"}`` (+ ``"server"`` with ``data_dir``) of one export in a
    fresh process; with ``data_dir`` (and ``uri`` empty) the export serves that directory
    itself, the embedded default, and the peaks are sampled ``VmHWM`` of each process."""
    env = {**os.environ, "MONGO_URI": uri, "MONGO_DATABASE": database}
    if data_dir is not None:
        env["MONGO_DATA_DIR"] = str(data_dir)
    command = [sys.executable, "-m", "crawler.export", "notes", "--format", fmt, "-o", str(out)]
    t0 = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    own = server = 0
    if data_dir is not None:
        while proc.poll() is None:  # reaps the export: poll() then returns its status
            own = max(own, _hwm(proc.pid) or 0)
            server = max([server, *(_hwm(c) or 0 for c in _children(proc.pid))])
            time.sleep(0.02)
        returncode = proc.returncode
    else:
        _, status, usage = os.wait4(proc.pid, 0)
        returncode = proc.returncode = os.waitstatus_to_exitcode(status)
        own = usage.ru_maxrss * 1024
    elapsed = time.monotonic() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if returncode != 0:
        raise RuntimeError(f"export {fmt} of {database} failed: {err.strip()[-500:]}")
    peaks = {"export": float(own), "seconds": elapsed}
    if data_dir is not None:
        peaks["server"] = float(server)
    return peaks


def _check(label: str, peaks: dict[int, float], small: int, large: int) -> Check:
    r = peaks[large] / peaks[small]
    return Check(
        f"{label} export peak RSS, {large:,} vs {small:,} notes",
        f"≤ {TARGET}",
        f"{r:.2f} ({peaks[small] / 2**20:.0f} → {peaks[large] / 2**20:.0f} MB)",
        r <= TARGET,
    )


def measure(tmp: Path, small: int, large: int) -> tuple[dict[str, object], list[Check]]:
    figures: dict[str, object] = {"notes_small": small, "notes_large": large}
    checks: list[Check] = []
    data = tmp / "mongo"
    with MongoServer(data, process=True) as server:
        for n in (small, large):
            fill(server.uri, f"n{n}", n)
        for fmt in FORMATS:
            peaks = {}
            for n in (small, large):
                out = tmp / f"notes-{n}.{fmt}"
                m = export_peak(server.uri, f"n{n}", fmt, out)
                peaks[n] = m["export"]
                figures[f"{fmt}_{n}_peak_rss_mb"] = round(m["export"] / 2**20, 1)
                figures[f"{fmt}_{n}_seconds"] = round(m["seconds"], 2)
                figures[f"{fmt}_{n}_file_mb"] = round(out.stat().st_size / 2**20, 2)
            figures[f"{fmt}_ratio"] = round(peaks[large] / peaks[small], 3)
            checks.append(_check(fmt, peaks, small, large))
    for fmt in FORMATS:  # nobody serves the directory now: each export starts the server
        peaks, servers = {}, {}
        for n in (small, large):
            out = tmp / f"embedded-{n}.{fmt}"
            m = export_peak("", f"n{n}", fmt, out, data)
            peaks[n], servers[n] = m["export"], m["server"]
            figures[f"embedded_{fmt}_{n}_peak_rss_mb"] = round(m["export"] / 2**20, 1)
            figures[f"embedded_{fmt}_{n}_server_peak_rss_mb"] = round(m["server"] / 2**20, 1)
            figures[f"embedded_{fmt}_{n}_seconds"] = round(m["seconds"], 2)
            if out.read_bytes() != (tmp / f"notes-{n}.{fmt}").read_bytes() and fmt != "xlsx":
                raise RuntimeError(f"embedded {fmt} export of {n} notes differs from the other")
        figures[f"embedded_{fmt}_ratio"] = round(peaks[large] / peaks[small], 3)
        figures[f"embedded_{fmt}_server_ratio"] = round(servers[large] / servers[small], 3)
        checks.append(_check(f"embedded {fmt}", peaks, small, large))
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
            "<fmt>_*: MONGO_URI set, the database in another process; peak RSS = ru_maxrss "
            "of the export process",
            "embedded_<fmt>_*: MONGO_URI empty, nobody serving the directory: the export "
            "starts the embedded server as its child; peak RSS = sampled VmHWM of the export "
            "process (checked) and of the server child (*_server_*, reported: secantus holds "
            "a query's whole result in the serving process, so it grows with the collection)",
            "each embedded file is compared with the MONGO_URI export of the same notes "
            "(byte for byte; xlsx embeds a creation time, so not compared)",
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
