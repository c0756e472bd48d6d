"""The database an export reads: ``MONGO_URI``'s server, or the embedded one, never
served from the export's own process.

Why not in-process, as the crawler starts it: secantus builds a query's whole result in
the process that serves it. Its ``find`` decodes every candidate document into one list
(a collection scan, or every document an index walk names), then filters, sorts and
cuts, and the cursor hands that list out batch by batch. No query shape avoids it: a
keyset page ``{_id: {$gt: last}}`` sorted by ``_id`` is a COLLSCAN + SORT of the whole
collection for every page (``_id`` ranges have no index path; only ``_id`` equality and
``$in`` are point lookups), and ``count``, ``distinct`` and ``aggregate`` read through
the same list. Served in-process, an export of 20,000 notes therefore held all 20,000
decoded notes in the exporter (peak RSS 290 → 560 MB against 2,000).

So the export joins the server another live process advertises in
``<MONGO_DATA_DIR>/embedded.json`` (a crawl, the web app, ``python -m pipelines.mongo
serve``), exactly as the crawler joins one; when nobody serves the directory it starts
``python -m pipelines.mongo serve`` as its child for the length of the export (the
directory's lock and ``embedded.json`` are then the child's, so other processes join or
take it over as usual) and stops it at the end. The export's own memory then holds one
batch; the serving process's still grows with the collection, as any secantus server's
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from pipelines.mongo import (
    MongoSettings,
    close_databases,
    open_database,
    pid_alive,
    read_embedded_info,
)

logger = logging.getLogger(__name__)


class StoreUnavailable(RuntimeError):
    """The embedded server for the export could not be started (message says why)."""


def _live_server(data_dir: Path) -> dict[str, Any] | None:
    info = read_embedded_info(data_dir)
    return info if info and pid_alive(info["pid"]) else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ServeChild:
    """``python -m pipelines.mongo serve`` on the data directory, as a child process."""

    def __init__(self, settings: MongoSettings) -> None:
        self.data_dir = Path(settings.data_dir).resolve()
        self._settings = settings
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it advertises itself; returns at once (without a
        child of ours) if another process took the directory first."""
        s = self._settings
        command = [sys.executable, "-m", "pipelines.mongo", "serve", "--data",
                   str(self.data_dir), "--host", s.embedded_host,
                   "--port", str(s.embedded_port)]  # fmt: skip
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the child)
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            preexec_fn=_die_with_parent,  # a killed export leaves no server behind
        )
        deadline = time.monotonic() + max(s.embedded_wait_s, 30.0)
        while True:
            info = read_embedded_info(self.data_dir)
            if info and info.get("pid") == self._proc.pid:
                logger.info("export: embedded server pid %d at %s", info["pid"], info["uri"])
                return
            if self._proc.poll() is not None:
                if self._proc.returncode == 1 and _live_server(self.data_dir):
                    self._proc = None  # "already served": another process won the race
                    return
                raise StoreUnavailable(
                    f"the embedded server for {self.data_dir} exited with status "
                    f"{self._proc.returncode}: {self._stderr_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise StoreUnavailable(
                    f"the embedded server for {self.data_dir} did not come up: "
                    f"{self._stderr_tail()}"
                )
            time.sleep(0.05)

    def _stderr_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # serve stops on SIGTERM and withdraws embedded.json
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.asynccontextmanager
async def export_database(settings: Any) -> AsyncIterator[Any]:
    """The async database to export from (Scrapy settings or :class:`MongoSettings`)."""
    ms = settings if isinstance(settings, MongoSettings) else MongoSettings.from_settings(settings)
    child: ServeChild | None = None
    if not ms.uri and _live_server(Path(ms.data_dir)) is None:
        child = ServeChild(ms)
        await asyncio.to_thread(child.start)
    try:
        _, db = await open_database(ms)
        yield db
    finally:
        try:
            await close_databases()
        finally:
            if child is not None:
                await asyncio.to_thread(child.stop)
