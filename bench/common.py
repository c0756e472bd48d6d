"""Shared parts of the benchmarks: machine description, results, crawl subprocesses.

Every benchmark prints its figures, then one line ``VERDICT: PASS|FAIL <name>: …``, and
writes ``bench/results/<name>.json`` (``<name>.quick.json`` for ``--quick`` runs, so a
short run never overwrites the committed full figures) holding the machine it ran on,
the figures and the checks (claim, target, measured, pass).

Crawls run as real ``scrapy crawl`` subprocesses (or, when the argument list would be
longer than the kernel allows for one argument, through :mod:`bench.crawl_runner`,
which runs the same spider with the same project settings in a subprocess). Their
Scrapy stats come back through :class:`StatsDump`, an extension added for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from sandbox.crawlenv import crawl_env as sandbox_crawl_env
from sandbox.crawlenv import isolated_environ

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# One `-a` value may not exceed the kernel's MAX_ARG_STRLEN (128 KiB); stay well below.
MAX_CLI_ARG = 100_000


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


# --- process memory ---------------------------------------------------------------------------


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 once gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in processes:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


class PeakRss:
    """Samples the RSS of a process tree on a thread until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peak_main = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            try:
                self.peak_main = max(self.peak_main, psutil.Process(self.pid).memory_info().rss)
            except psutil.NoSuchProcess:
                break
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --- crawls -------------------------------------------------------------------------------------


class StatsDump:
    """Scrapy extension: writes the run's final stats as JSON to ``BENCH_STATS_PATH``.

    Adds ``bench/window_s``: seconds from the first response to the last response or
    scraped item, whichever is later (the steady part of the run, without start-up and
    shutdown), and ``bench/window_cpu_s``: the crawl process's CPU time in that window.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.first: tuple[float, float] | None = None  # (monotonic, process CPU)
        self.last: tuple[float, float] | None = None

    def _seen(self) -> None:
        now = (time.monotonic(), time.process_time())
        self.first = now if self.first is None else self.first
        self.last = now

    @classmethod
    def from_crawler(cls, crawler: Any) -> StatsDump:
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        path = crawler.settings.get("BENCH_STATS_PATH")
        if not path:
            raise NotConfigured("BENCH_STATS_PATH not set")
        ext = cls(path)
        ext.stats = crawler.stats
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext._seen, signal=signals.response_received)
        crawler.signals.connect(ext._seen, signal=signals.item_scraped)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        data = {**self.stats.get_stats(), "finish_reason": reason}
        if self.first is not None and self.last is not None:
            data["bench/window_s"] = self.last[0] - self.first[0]
            data["bench/window_cpu_s"] = self.last[1] - self.first[1]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, default=str, ensure_ascii=False, indent=1))


def extensions_with_stats_dump() -> dict[str, int | None]:
    """The project's EXTENSIONS plus :class:`StatsDump` (``-s EXTENSIONS`` replaces the dict)."""
    from crawler.settings import EXTENSIONS

    return {**EXTENSIONS, "bench.common.StatsDump": 900}


# Item pipelines without media (and so without enrichment input): the incremental check
# and Mongo storage only, as a JSON value for ``-s ITEM_PIPELINES=``.
STORE_ONLY_PIPELINES = json.dumps(
    {
        "pipelines.incremental.IncrementalPipeline": 100,
        "pipelines.storage.MongoStoragePipeline": 400,
    }
)


def crawl_env(site: Any, **extra: str) -> dict[str, str]:
    """Environment of a crawl of the sandbox ``site``, isolated from any real service."""
    return sandbox_crawl_env(site, isolated_environ(), PYTHONPATH=str(ROOT), **extra)


def fast_settings(workdir: Path) -> dict[str, str]:
    """Sandbox-sized settings: no politeness delays, every file under ``workdir``."""
    return {
        "DOWNLOAD_DELAY": "0",
        "AUTOTHROTTLE_ENABLED": "False",
        "IMAGES_STORE": str(workdir / "images"),
        "MONGO_DATA_DIR": str(workdir / "mongo-embedded"),
        "MONGO_SPOOL_PATH": str(workdir / "spool" / "notes.jsonl"),
        "RUN_REPORT_DIR": "",
        "LOG_LEVEL": "INFO",
    }


@dataclass
class CrawlRun:
    """What one crawl subprocess left behind."""

    returncode: int
    log: str
    items: list[dict[str, Any]]
    stats: dict[str, Any]
    wall_s: float
    peak_rss_bytes: int = 0  # the process and its children (Chromium, when launched)
    peak_rss_main_bytes: int = 0  # the crawl process alone
    log_path: Path | None = None

    @property
    def elapsed_s(self) -> float:
        """The crawl's own elapsed time (Scrapy's stat), else the wall time."""
        return float(self.stats.get("elapsed_time_seconds") or self.wall_s)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Kill a crawl that outlived its timeout or the caller's fault injection."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def note_refs(notes: Sequence[Any]) -> str:
    """``ID:TOKEN,…`` for ``-a note_ids=``."""
    return ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)


def run_crawl(
    spider: str,
    args: Mapping[str, str],
    env: Mapping[str, str],
    *,
    workdir: Path,
    label: str,
    settings: Mapping[str, str] | None = None,
    feed: bool = True,
    measure_rss: bool = False,
    timeout: float = 3600,
    while_running: Callable[[subprocess.Popen[bytes]], None] | None = None,
    use_runner: bool = False,
    spider_file: Path | None = None,
) -> CrawlRun:
    """Run one crawl to the end; ``while_running(proc)`` is called once it has started
    (on this thread: use it to inject faults), then the process is awaited.

    ``spider_file``: ``scrapy runspider`` that file outside the project (plain Scrapy
    defaults plus ``settings``). ``use_runner``: go through :mod:`bench.crawl_runner`
    even when the arguments would fit on a command line.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stats_path = workdir / f"{label}.stats.json"
    log_path = workdir / f"{label}.log"
    out = workdir / f"{label}.items.jsonl"
    for stale in (stats_path, out):
        stale.unlink(missing_ok=True)
    extensions = {"bench.common.StatsDump": 900} if spider_file else extensions_with_stats_dump()
    merged = {
        **fast_settings(workdir),
        "EXTENSIONS": json.dumps(extensions),
        "BENCH_STATS_PATH": str(stats_path),
        **(settings or {}),
    }
    cwd = ROOT
    if spider_file is not None:
        # Outside the checkout: no scrapy.cfg, so none of the project's settings apply.
        cwd = workdir
        command = [sys.executable, "-m", "scrapy", "runspider", str(spider_file)]
        for name, value in args.items():
            command += ["-a", f"{name}={value}"]
        for name, value in merged.items():
            command += ["-s", f"{name}={value}"]
    elif use_runner or any(len(v) > MAX_CLI_ARG for v in args.values()):
        spec = workdir / f"{label}.spec.json"
        feed_uri = f"{out}:jsonlines" if feed else None
        payload = {"spider": spider, "args": dict(args), "settings": merged, "feed": feed_uri}
        spec.write_text(json.dumps(payload))
        command = [sys.executable, "-m", "bench.crawl_runner", str(spec)]
    else:
        command = [sys.executable, "-m", "scrapy", "crawl", spider]
        for name, value in args.items():
            command += ["-a", f"{name}={value}"]
        for name, value in merged.items():
            command += ["-s", f"{name}={value}"]
        if feed:
            command += ["-O", f"{out}:jsonlines"]
    started = time.monotonic()
    with log_path.open("wb") as log_file, ExitStack() as stack:
        proc = subprocess.Popen(
            command, cwd=cwd, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT
        )
        stack.callback(_reap, proc)
        sampler = stack.enter_context(PeakRss(proc.pid)) if measure_rss else None
        if while_running is not None:
            while_running(proc)
        proc.wait(timeout=timeout)
    wall = time.monotonic() - started
    items = []
    if feed and out.exists():
        items = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return CrawlRun(
        returncode=proc.returncode,
        log=log_path.read_text(errors="replace"),
        items=items,
        stats=stats,
        wall_s=wall,
        peak_rss_bytes=sampler.peak if sampler is not None else 0,
        peak_rss_main_bytes=sampler.peak_main if sampler is not None else 0,
        log_path=log_path,
    )


def tail(text: str, chars: int = 3000) -> str:
    return text[-chars:]


@contextmanager
def mongo_server(path: Path, port: int = 0) -> Iterator[Any]:
    """A MongoDB-wire server (secantus) on ``path`` in its own process, as a database
    runs in production (in this process it would share the GIL with the sandbox site
    and skew every figure); ``.uri`` for ``MONGO_URI``."""
    import socket
    from types import SimpleNamespace

    path.mkdir(parents=True, exist_ok=True)
    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    command = [sys.executable, "-m", "pipelines.mongo", "serve", "--data", str(path),
               "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the MongoDB-wire server did not start on {port}") from None
                time.sleep(0.05)
        yield SimpleNamespace(uri=f"mongodb://127.0.0.1:{port}/")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
    being measured. ``config`` is written to a TOML file; the log and knobs go over HTTP.
    """

    stop_signal = 2  # SIGINT: it prints its summary and exits

    def __init__(self, config_toml: str, workdir: Path) -> None:
        super().__init__()
        self.config_path = workdir / f"emulator-{id(self)}.toml"
        self.config_path.write_text(config_toml)
        self.base_url = ""

    def __enter__(self) -> EmulatorProcess:
        line = self._start([sys.executable, "-m", "sandbox.gemini", "--port", "0",
                            "--config", str(self.config_path)])  # fmt: skip
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
