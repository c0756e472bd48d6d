"""One harness for the tests, the benchmarks and the demo.

- :func:`free_port`: a free loopback TCP port.
- :func:`wait_for_port`: block until something listens on a port.
- :class:`MongoServer`: a MongoDB-wire server (secantus) on a fixed port and data
  directory, in this process (a thread) or in its own process, that can be stopped
  and started again on the same port (outage tests, the chaos bench).
- :func:`run_crawl`: one ``scrapy crawl`` subprocess with a timeout; returns a
  :class:`CrawlResult` (exit status, stdout, stderr, elapsed, items, final stats).
  :func:`start_crawl` starts one without waiting (overlapping runs, interruptions).
- :class:`StatsDump`: the Scrapy extension :func:`run_crawl` adds to dump the stats.
- :class:`PeakRss`: the peak resident memory of a process tree, sampled on a thread.

Crawls run as real subprocesses, the way users run them: no reactor leaks between
tests, the project's settings apply. Point a crawl at the sandbox site with
:func:`sandbox_env` (from :mod:`sandbox.crawlenv`, isolated from any real service).
This module may import the crawler (it is one of the three sandbox modules that may);
it imports the crawler's settings and Mongo helpers lazily, where they are needed.

Why one module of ~500 lines: it is the one place the tests, the benchmarks and the
demo import their machinery from, and the layer rule names it as the sandbox module
allowed to reach into the crawler; its sections (ports, Mongo, crawls, measuring) are
small and independent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.crawlenv import crawl_env, isolated_environ

ROOT = Path(__file__).resolve().parent.parent
# One `-a` value may not exceed the kernel's MAX_ARG_STRLEN (128 KiB); stay well below.
MAX_CLI_ARG = 100_000
STATS_DUMP = "sandbox.harness.StatsDump"


# --- ports -----------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; free until someone binds)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = 30,
    alive: Callable[[], bool] = lambda: True,
    what: str = "server",
) -> None:
    """Return once ``host:port`` accepts a connection; RuntimeError after ``timeout``
    seconds or as soon as ``alive()`` says the process meant to listen has died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {what} did not start on {host}:{port}") from None
            time.sleep(0.05)


# --- MongoDB-wire server ------------------------------------------------------------------------


@contextmanager
def captcha_burst(site: Any, *, after: Sequence[str], calls: int, seconds: float) -> Iterator[None]:
    """While the block runs: once the site's counters ``after`` add up to ``calls``, every
    guarded call answers 461 for ``seconds``, then the site is calm again (a captcha
    burst in the middle of a crawl, whatever the crawl's pace)."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            stats = site.stats()
            if sum(stats.get(name, 0) for name in after) >= calls:
                site.control(captcha_threshold=1, captcha_window=seconds)
                stop.wait(seconds)
                site.control(captcha_threshold=0)
                return
            stop.wait(0.02)

    thread = threading.Thread(target=watch, name="captcha-burst", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class MongoServer:
    """A secantus server on one port and data directory; ``.uri`` for ``MONGO_URI``.

    ``process=False`` runs it on threads of this process (cheap: tests). ``process=True``
    runs ``python -m pipelines.mongo serve`` as a child process, as a database runs in
    production (benchmarks: in this process it would share the GIL with the sandbox site
    and skew every figure). ``stop()`` then ``start()`` (or ``restart(down_s)``) brings it
    back on the same port and data: an outage as clients see one.
    """

    def __init__(self, path: Path, *, port: int = 0, process: bool = False) -> None:
        self.path = Path(path)
        self.port = port or free_port()
        self.process = process
        self.restarts = 0
        self._server: Any = None  # SecantusDBServer (thread) or Popen (process)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def pid(self) -> int | None:
        """The server process's id (``process=True`` only), for CPU accounting."""
        return self._server.pid if self.process and self._server is not None else None

    def start(self) -> MongoServer:
        """Start serving; RuntimeError if already started or it does not come up."""
        if self._server is not None:
            raise RuntimeError("the MongoDB-wire server is already running")
        self.path.mkdir(parents=True, exist_ok=True)
        if self.process:
            command = [sys.executable, "-m", "pipelines.mongo", "serve", "--data",
                       str(self.path), "--port", str(self.port)]  # fmt: skip
            proc = subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self._server = proc
            try:
                wait_for_port(
                    self.port, alive=lambda: proc.poll() is None, what="MongoDB-wire server"
                )
            except RuntimeError:
                self.stop()
                raise
        else:
            from secantus import SecantusDBServer

            server = SecantusDBServer("127.0.0.1", self.port, storage_path=str(self.path))
            server.start()
            self._server = server
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); the data directory stays."""
        server, self._server = self._server, None
        if server is None:
            return
        if self.process:
            stop_process(server)
        else:
            from pipelines.mongo import stop_server

            stop_server(server)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port and data."""
        self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1

    def __enter__(self) -> MongoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- crawls ---------------------------------------------------------------------------------------


def sandbox_env(site: Any, **extra: str) -> dict[str, str]:
    """Environment of a crawl of the sandbox ``site`` (``.url``, ``.cdn_url``), isolated
    from any real service, with this checkout importable."""
    return crawl_env(site, isolated_environ(), PYTHONPATH=str(ROOT), **extra)


# The sandbox is local: no need for the real site's politeness delays.
NO_DELAYS = {"DOWNLOAD_DELAY": "0", "AUTOTHROTTLE_ENABLED": "False"}


def sandbox_settings(workdir: Path) -> dict[str, str]:
    """Sandbox-sized settings: no politeness delays, every file under ``workdir``."""
    return {
        **NO_DELAYS,
        "IMAGES_STORE": str(workdir / "images"),
        "MONGO_DATA_DIR": str(workdir / "mongo-embedded"),
        "MONGO_SPOOL_PATH": str(workdir / "spool" / "notes.jsonl"),
        "RUN_REPORT_DIR": str(workdir / "reports"),
        "LOG_LEVEL": "INFO",
    }


def project_knobs(env: Mapping[str, str]) -> dict[str, str]:
    """The project's knobs as a crawl with ``env`` sees them (the env var of the same
    name, else the declared default), as ``-s`` values: ``scrapy runspider`` outside the
    checkout reads no project settings, yet the components it may run read these."""
    from crawler.settings import knob_defaults

    return {name: env.get(name, str(value)) for name, value in knob_defaults.items()}


def extensions_with_stats_dump() -> dict[str, int | None]:
    """The project's EXTENSIONS plus :class:`StatsDump` (``-s EXTENSIONS`` replaces the dict)."""
    from crawler.settings import EXTENSIONS

    return {**EXTENSIONS, STATS_DUMP: 900}


@dataclass
class CrawlResult:
    """What one crawl subprocess left behind."""

    returncode: int  # the exit status (negative: killed by that signal)
    stdout: str
    stderr: str  # Scrapy's log
    items: list[dict[str, Any]]  # the JSON-lines feed, when asked for
    stats: dict[str, Any]  # the final Scrapy stats (StatsDump), {} if it never closed
    wall_s: float
    timed_out: bool = False
    peak_rss_bytes: int = 0  # the process and its children (Chromium, when launched)
    peak_rss_main_bytes: int = 0  # the crawl process alone
    log_path: Path | None = None  # where ``stderr`` was written
    command: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        """Everything the crawl printed (stdout first, then the log)."""
        return self.stdout + self.stderr

    @property
    def elapsed_s(self) -> float:
        """The crawl's own elapsed time (Scrapy's stat), else the wall time."""
        return float(self.stats.get("elapsed_time_seconds") or self.wall_s)


def _crawl_command(
    spider: str,
    args: Mapping[str, str],
    settings: Mapping[str, str],
    *,
    out: Path | None,
    workdir: Path,
    label: str,
    use_runner: bool,
    spider_file: Path | None,
) -> list[str]:
    """The command line of one crawl (``scrapy crawl``/``runspider`` or the JSON runner)."""
    if spider_file is None and (use_runner or any(len(v) > MAX_CLI_ARG for v in args.values())):
        spec = workdir / f"{label}.spec.json"
        feed_uri = f"{out}:jsonlines" if out is not None else None
        payload = {"spider": spider, "args": dict(args), "settings": dict(settings),
                   "feed": feed_uri}  # fmt: skip
        spec.write_text(json.dumps(payload))
        return [sys.executable, "-m", "sandbox.crawl_runner", str(spec)]
    if spider_file is not None:
        command = [sys.executable, "-m", "scrapy", "runspider", str(spider_file)]
    else:
        command = [sys.executable, "-m", "scrapy", "crawl", spider]
    for name, value in args.items():
        command += ["-a", f"{name}={value}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    if out is not None:
        command += ["-O", f"{out}:jsonlines"]
    return command


class Crawl:
    """A started crawl subprocess (from :func:`start_crawl`); ``wait()`` ends it.

    ``proc`` is the :class:`subprocess.Popen` (send it signals, poll it); use as a
    context manager to be sure it is killed if the test fails before ``wait()``.
    """

    def __init__(
        self,
        command: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        files: Mapping[str, Path],
        measure_rss: bool,
        capture: bool,
    ) -> None:
        self.command = command
        self.files = dict(files)  # log, stdout, stats, items (None without a feed)
        self._stack = ExitStack()
        log = out = None  # not captured: the crawl writes to this process's stdout/stderr
        if capture:
            log = self._stack.enter_context(self.files["log"].open("wb"))
            out = self._stack.enter_context(self.files["stdout"].open("wb"))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=out, stderr=log)
        self._stack.callback(self.kill)
        self._sampler = self._stack.enter_context(PeakRss(self.proc.pid)) if measure_rss else None

    def kill(self) -> None:
        """Kill the crawl if it still runs, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wait(self, timeout: float = 600) -> CrawlResult:
        """Wait for the crawl to end (after ``timeout`` seconds kill it: ``timed_out``)."""
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        wall = time.monotonic() - self.started
        self._stack.close()  # kills a timed-out crawl, stops the sampler, closes the logs
        items_path, stats_path = self.files["items"], self.files["stats"]
        sampler = self._sampler
        return CrawlResult(
            returncode=self.proc.returncode,
            stdout=_read(self.files["stdout"]),
            stderr=_read(self.files["log"]),
            items=list(read_jsonl(items_path)) if items_path and items_path.exists() else [],
            stats=json.loads(stats_path.read_text()) if stats_path.exists() else {},
            wall_s=wall,
            timed_out=timed_out,
            peak_rss_bytes=sampler.peak if sampler is not None else 0,
            peak_rss_main_bytes=sampler.peak_main if sampler is not None else 0,
            log_path=self.files["log"] if self.files["log"].exists() else None,
            command=self.command,
        )

    def __enter__(self) -> Crawl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()


def start_crawl(
    spider: str,
    args: Mapping[str, str],
    env: Mapping[str, str],
    *,
    workdir: Path,
    label: str = "crawl",
    settings: Mapping[str, str] | None = None,
    feed: bool = True,
    measure_rss: bool = False,
    use_runner: bool = False,
    spider_file: Path | None = None,
    capture: bool = True,
    sandbox_paths: bool = True,
    stats_dump: bool = True,
    prefix: Sequence[str] = (),
) -> Crawl:
    """Start one crawl and return at once (:func:`run_crawl` waits for it).

    Settings: :func:`sandbox_settings` under ``workdir``, the stats dump, then
    ``settings``. Files: ``workdir/<label>.{log,stdout,items.jsonl,stats.json}``.
    ``spider_file``: ``scrapy runspider`` that file from ``workdir``, outside the project
    (Scrapy's defaults, the project's knobs (:func:`project_knobs`), then ``settings``). ``use_runner``: go through
    :mod:`sandbox.crawl_runner` (a JSON spec file), as happens anyway when an argument is
    too long for a command line. ``measure_rss``: sample the process tree's memory.
    ``capture=False``: the crawl prints to this process's stdout/stderr (the demo),
    the result's ``stdout``/``stderr`` stay empty. ``sandbox_paths=False``: only no
    delays, the files (images, embedded Mongo, reports) where the project puts them.
    ``stats_dump=False``: the project's extensions untouched, no ``stats`` in the result.
    ``prefix``: a command the crawl runs under (``unshare --uts …``: another host name).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {
        "log": workdir / f"{label}.log",
        "stdout": workdir / f"{label}.stdout",
        "stats": workdir / f"{label}.stats.json",
        "items": workdir / f"{label}.items.jsonl" if feed else None,
    }
    for stale in (files["stats"], files["log"], files["stdout"], workdir / f"{label}.items.jsonl"):
        stale.unlink(missing_ok=True)
    merged = project_knobs(env) if spider_file is not None else {}
    merged.update(sandbox_settings(workdir) if sandbox_paths else NO_DELAYS)
    if stats_dump:
        extensions = {STATS_DUMP: 900} if spider_file else extensions_with_stats_dump()
        merged["EXTENSIONS"] = json.dumps(extensions)
        merged["HARNESS_STATS_PATH"] = str(files["stats"])
    merged.update(settings or {})
    command = _crawl_command(
        spider, args, merged, out=files["items"], workdir=workdir, label=label,
        use_runner=use_runner, spider_file=spider_file,
    )  # fmt: skip
    command = [*prefix, *command]
    cwd = ROOT
    if spider_file is not None:
        # Outside the checkout: no scrapy.cfg, none of the project's settings; this
        # checkout stays importable (the stats dump lives here).
        cwd = workdir
        path = env.get("PYTHONPATH")
        env = {**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}
    return Crawl(command, cwd=cwd, env=env, files=files, measure_rss=measure_rss, capture=capture)


def run_crawl(
    spider: str,
    args: Mapping[str, str],
    env: Mapping[str, str],
    *,
    timeout: float = 600,
    while_running: Callable[[subprocess.Popen[bytes]], None] | None = None,
    **options: Any,
) -> CrawlResult:
    """Run one crawl to its end (or ``timeout`` seconds, then kill it: ``timed_out``).

    ``options`` as for :func:`start_crawl` (``workdir`` is required).
    ``while_running(proc)`` is called on this thread once the process has started (use
    it to inject faults; the timeout counts from its return).
    """
    with start_crawl(spider, args, env, **options) as crawl:
        if while_running is not None:
            while_running(crawl.proc)
        return crawl.wait(timeout)


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 once gone)."""
    import psutil

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
    """Samples the RSS of a process tree on a thread until stopped; keeps the peak
    (``peak``: the tree, ``peak_main``: the process alone)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peak_main = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        import psutil

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


class StatsDump:
    """Scrapy extension: writes the run's final stats as JSON to ``HARNESS_STATS_PATH``.

    Adds ``finish_reason`` and ``bench/window_s``: seconds from the first response to the
    last response or scraped item, whichever is later (the steady part of the run,
    without start-up and shutdown), and ``bench/window_cpu_s``: the crawl process's CPU
    time in that window. Off (NotConfigured) without ``HARNESS_STATS_PATH``.
    """

    def __init__(self, path: str, stats: Any) -> None:
        self.path = Path(path)
        self.stats = stats
        self.first: tuple[float, float] | None = None  # (monotonic, process CPU)
        self.last: tuple[float, float] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_crawler(cls, crawler: Any) -> StatsDump:
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        # Not a project knob (the harness sets it on the command line), hence the default.
        path = crawler.settings.get("HARNESS_STATS_PATH", "")
        if not path:
            raise NotConfigured("HARNESS_STATS_PATH not set")
        ext = cls(path, crawler.stats)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext._seen, signal=signals.response_received)
        crawler.signals.connect(ext._seen, signal=signals.item_scraped)
        return ext

    def _seen(self) -> None:
        now = (time.monotonic(), time.process_time())
        with self._lock:
            self.first = now if self.first is None else self.first
            self.last = now

    def spider_closed(self, spider: Any, reason: str) -> None:
        data = {**self.stats.get_stats(), "finish_reason": reason}
        if self.first is not None and self.last is not None:
            data["bench/window_s"] = self.last[0] - self.first[0]
            data["bench/window_cpu_s"] = self.last[1] - self.first[1]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, default=str, ensure_ascii=False, indent=1))


def _read(path: Path) -> str:
    """A captured output file's text ("" when the output was not captured)."""
    return path.read_text(errors="replace") if path.exists() else ""


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file (blank lines skipped)."""
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)
