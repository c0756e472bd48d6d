"""Shared parts of the benchmarks: machine description, results, crawl subprocesses.

Every benchmark prints its figures, then one line ``VERDICT: PASS|FAIL <name>: …``, and
writes ``bench/results/<name>.json`` (``<name>.quick.json`` for ``--quick`` runs, so a
short run never overwrites the committed full figures) holding the machine it ran on,
the figures and the checks (claim, target, measured, pass).

Crawls, the MongoDB-wire server, ports and memory sampling come from the shared
harness, :mod:`sandbox.harness` (the tests and the demo use it too): crawls are real
``scrapy crawl`` subprocesses whose final stats come back as a dict. This module adds
what only the benchmarks need: results, the machine description, servers in child
processes (:class:`SiteProcess`, :class:`EmulatorProcess`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from sandbox import harness
from sandbox.harness import CrawlResult

ROOT = harness.ROOT
RESULTS = ROOT / "bench" / "results"


# --- machine and results ------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on (the load average says how busy it was)."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass(frozen=True)
class Check:
    """One claim of a benchmark: its target, what was measured, and whether it holds."""

    claim: str
    target: str
    measured: str
    passed: bool


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run (smaller sizes)")
    return parser.parse_args(argv)


def result_path(name: str, quick: bool) -> Path:
    return RESULTS / (f"{name}.quick.json" if quick else f"{name}.json")


def finish(
    name: str,
    *,
    quick: bool,
    started: float,
    figures: Mapping[str, Any],
    checks: Sequence[Check],
    notes: Sequence[str] = (),
    machine_info: Mapping[str, Any] | None = None,
) -> int:
    """Print the figures and the verdict, write the JSON result; exit status 0 on PASS."""
    passed = bool(checks) and all(c.passed for c in checks)
    command = f"python -m bench.{name}" + (" --quick" if quick else "")
    result = {
        "name": name,
        "mode": "quick" if quick else "full",
        "command": command,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": dict(machine_info or machine()),
        "figures": dict(figures),
        "checks": [asdict(c) for c in checks],
        "notes": list(notes),
        "verdict": "PASS" if passed else "FAIL",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = result_path(name, quick)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(json.dumps(result["figures"], indent=2, ensure_ascii=False, default=str))
    for note in notes:
        print(f"note: {note}")
    for check in checks:
        mark = "ok  " if check.passed else "MISS"
        print(f"[{mark}] {check.claim}: measured {check.measured} (target {check.target})")
    summary = "; ".join(f"{c.claim}: {c.measured}" for c in checks)
    print(f"VERDICT: {result['verdict']} {name}: {summary} ({path.relative_to(ROOT)})", flush=True)
    return 0 if passed else 1


# --- crawls (through the shared harness) --------------------------------------------------


# Item pipelines without media (and so without enrichment input): the incremental check
# and Mongo storage only, as a JSON value for ``-s ITEM_PIPELINES=``.
STORE_ONLY_PIPELINES = json.dumps(
    {
        "pipelines.incremental.IncrementalPipeline": 100,
        "pipelines.storage.MongoStoragePipeline": 400,
    }
)


def note_refs(notes: Sequence[Any]) -> str:
    """``ID:TOKEN,…`` for ``-a note_ids=``."""
    return ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)


def run_crawl(
    spider: str,
    args: Mapping[str, str],
    env: Mapping[str, str],
    *,
    settings: Mapping[str, str] | None = None,
    timeout: float = 3600,
    **options: Any,
) -> CrawlResult:
    """:func:`sandbox.harness.run_crawl` without the HTML run report (writing it is not
    what the benchmarks measure) and with an hour's timeout; same other options."""
    merged = {"RUN_REPORT_DIR": "", **(settings or {})}
    return harness.run_crawl(spider, args, env, settings=merged, timeout=timeout, **options)


def tail(text: str, chars: int = 3000) -> str:
    return text[-chars:]


def mb(value: float) -> float:
    return round(value / 2**20, 1)


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


class _ServerProcess:
    """A sandbox server in a child process: started by the subclass's ``__enter__``
    (which reads its URL line), stopped by ``stop_signal``, driven over HTTP."""

    stop_signal = 15  # SIGTERM

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def _start(self, command: list[str]) -> str:
        """Start ``command``; the first line it prints (the one with its URL)."""
        self._proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self._proc.stdout is not None
        return self._proc.stdout.readline()

    def __exit__(self, *exc_info: object) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(self.stop_signal)
        try:
            self._proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
        self._proc = None

    def _post(self, url: str, body: Mapping[str, Any] | None = None) -> Any:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


class EmulatorProcess(_ServerProcess):
    """The Gemini emulator in its own process (``python -m sandbox.gemini``), so that its
    CPU work (decoding every image it is sent) does not share a GIL with the client
    being measured. ``config_toml`` is written to a TOML file (None: the emulator's
    default scenario); the log and knobs go over HTTP.
    """

    stop_signal = 2  # SIGINT: it prints its summary and exits

    def __init__(self, config_toml: str | None, workdir: Path) -> None:
        super().__init__()
        self.config_path: Path | None = None  # None: the default scenario (any key works)
        if config_toml is not None:
            self.config_path = workdir / f"emulator-{id(self)}.toml"
            self.config_path.write_text(config_toml)
        self.base_url = ""

    def __enter__(self) -> EmulatorProcess:
        command = [sys.executable, "-m", "sandbox.gemini", "--port", "0"]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        line = self._start(command)
        if "http://" not in line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.base_url = line[line.index("http://") :].strip()
        return self

    def _call(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._post(self.base_url + path, body)

    def requests(self) -> list[dict[str, Any]]:
        """The request log (records as JSON: ``time`` ISO, ``method``, ``status`` …)."""
        return self._call("/_emulator/log")["requests"]

    def control(self, **knobs: Any) -> dict[str, Any]:
        return self._call("/_emulator/control", knobs)


class SiteProcess(_ServerProcess):
    """The sandbox site in its own process (``python -m sandbox.site``), so that page
    rendering does not compete for a GIL with anything measured in this process. Same
    attributes the benchmarks use from ``SiteServer``: ``url``, ``cdn_url``,
    ``dataset``, ``stats()``, ``control(**knobs)``."""

    def __init__(self, seed: int, notes: int) -> None:
        from sandbox.dataset import Dataset

        self.seed = seed
        self.notes = notes
        self.dataset = Dataset(seed, notes)
        self.url = self.cdn_url = ""
        super().__init__()

    def __enter__(self) -> SiteProcess:
        line = self._start([sys.executable, "-m", "sandbox.site", "--port", "0", "--seed",
                            str(self.seed), "--notes", str(self.notes)])  # fmt: skip
        words = line.replace("(", " ").replace(",", " ").split()
        urls = [w for w in words if w.startswith("http://")]
        if len(urls) < 2:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the sandbox site did not start: {line!r}")
        self.url, self.cdn_url = urls[0], urls[1]
        return self

    def _call(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._post(self.url + path, body)

    def stats(self) -> dict[str, int]:
        return self._call("/_sandbox/stats")

    def control(self, **knobs: Any) -> dict[str, Any]:
        return self._call("/_sandbox/control", knobs)
