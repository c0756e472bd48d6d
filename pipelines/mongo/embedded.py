"""The embedded MongoDB-wire server (secantus): start, join, take over, serve.

With ``MONGO_URI`` empty the crawler needs no database install: the first process that
wants the database starts a :class:`secantus.SecantusDBServer` in-process on
``MONGO_DATA_DIR`` (default ``data/mongo``, WiredTiger) and advertises its address in
``<data dir>/embedded.json`` ``{uri, pid, data_dir, started_at}``. Ownership of a data
directory is an exclusive ``flock`` on ``<data dir>/embedded.lock``, held for the life of
the server: the kernel releases it when the owner dies, so a crashed run never blocks
the next one. A process that finds the lock held connects to the advertised server
instead of starting a second one (WiredTiger allows one owner per directory). Within one
process, handles on the same directory share one server (reference counted).

An embedded server lives as long as the process that started it. When it goes away
(that crawl finished or crashed) while another process still uses it, the other
process takes the directory over on the same address (:func:`take_over`, called by
storage through :meth:`MongoHandle.take_over` when writes fail) and its client
reconnects. For long-lived access run ``python -m pipelines.mongo serve`` (:func:`serve`;
also what analysts use with pymongo, mongosh or Compass); crawls then connect to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from crawler.core.timeutil import utcnow

logger = logging.getLogger(__name__)

EMBEDDED_JSON = "embedded.json"
EMBEDDED_LOCK = "embedded.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _reachable(uri: str, timeout_ms: int = 1500) -> bool:
    client: AsyncMongoClient = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        await client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        await client.close()


def read_embedded_info(data_dir: str | Path) -> dict[str, Any] | None:
    """The advertised ``{uri, pid, …}`` of the server on ``data_dir``, if any."""
    try:
        info = json.loads((Path(data_dir) / EMBEDDED_JSON).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not info.get("uri") or not isinstance(info.get("pid"), int):
        return None
    return info


class _OplogMetaCloseNoise(logging.Filter):
    """Drops one known-harmless ERROR of secantus 0.7.0b3 at every shutdown.

    Its ``Storage.close()`` marks the storage closed *before* persisting the oplog
    counters, so that persist always fails ("Storage is closed"). The counters are
    only a hint: ``_load_oplog_meta`` recomputes them from the tables at the next open.
    Any other close-time error still gets through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (
            record.getMessage() == "failed to persist oplog meta during close"
            and isinstance(exc, RuntimeError)
            and str(exc) == "Storage is closed"
        )


logging.getLogger("secantus.storage.close").addFilter(_OplogMetaCloseNoise())


def stop_server(server: Any) -> None:
    """Stop a SecantusDBServer promptly.

    Its ``stop()`` closes the listening socket and joins the accept thread, but on
    Linux ``close()`` does not wake a thread blocked in ``accept()``: every stop then
    waits out the 2 s join timeout. ``shutdown()`` on the listening socket does wake
    it (the attribute is private, hence the defensive access).
    """
    listener = getattr(server, "_socket", None)
    if listener is not None:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
    server.stop()


class EmbeddedServer:
    """Owns a data directory: the flock, the secantus server and ``embedded.json``."""

    def __init__(self, data_dir: Path, lock_fd: int, host: str, port: int) -> None:
        self.data_dir = data_dir
        self._lock_fd = lock_fd
        self._host = host
        self._port = port
        self._server: Any = None
        self.uri = ""

    @classmethod
    def try_acquire(cls, data_dir: Path, host: str, port: int) -> EmbeddedServer | None:
        """Take the directory's lock without blocking; ``None`` if another process has it."""
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / EMBEDDED_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(data_dir, fd, host, port)

    def start(self) -> str:
        """Start the server (blocking: opens WiredTiger) and advertise it."""
        from secantus import SecantusDBServer

        try:
            server = SecantusDBServer(self._host, self._port, storage_path=str(self.data_dir))
            server.start()
        except BaseException:
            self._unlock()
            raise
        self._server = server
        self.uri = server.uri
        info = {
            "uri": self.uri,
            "pid": os.getpid(),
            "data_dir": str(self.data_dir.resolve()),
            "started_at": utcnow().isoformat(),
        }
        tmp = self.data_dir / f".{EMBEDDED_JSON}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(info), "utf-8")
        tmp.replace(self.data_dir / EMBEDDED_JSON)
        logger.info("embedded MongoDB-wire server at %s serving %s", self.uri, self.data_dir)
        return self.uri

    def stop(self) -> None:
        """Stop the server, withdraw ``embedded.json`` (if still ours) and unlock."""
        try:
            if self._server is not None:
                stop_server(self._server)
                self._server = None
                info = read_embedded_info(self.data_dir)
                if info and info.get("pid") == os.getpid() and info.get("uri") == self.uri:
                    with contextlib.suppress(OSError):
                        (self.data_dir / EMBEDDED_JSON).unlink()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1


class _EmbeddedRegistry:
    """In-process sharing of embedded servers by data directory (reference counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[Path, tuple[EmbeddedServer, int]] = {}

    def acquire_local(self, data_dir: Path) -> str | None:
        with self._lock:
            entry = self._servers.get(data_dir)
            if entry is None:
                return None
            self._servers[data_dir] = (entry[0], entry[1] + 1)
            return entry[0].uri

    def register(self, server: EmbeddedServer) -> None:
        with self._lock:
            self._servers[server.data_dir] = (server, 1)

    def release(self, data_dir: Path) -> EmbeddedServer | None:
        """Drop one reference; the server to stop when it was the last one."""
        with self._lock:
            entry = self._servers.get(data_dir)
            if entry is None:
                return None
            if entry[1] > 1:
                self._servers[data_dir] = (entry[0], entry[1] - 1)
                return None
            del self._servers[data_dir]
            return entry[0]


_EMBEDDED = _EmbeddedRegistry()


class EmbeddedUnavailable(RuntimeError):
    """The embedded server could neither be started nor reached."""


async def ensure_embedded(
    data_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    wait_s: float = 15.0,
) -> tuple[str, bool]:
    """The URI of the server for ``data_dir`` and whether this process owns a reference.

    Started here if nobody serves the directory; otherwise the live server another
    process advertises. Owned references must be given back with
    :func:`release_embedded`.
    """
    path = Path(data_dir).resolve()
    uri = _EMBEDDED.acquire_local(path)
    if uri:
        return uri, True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        server = EmbeddedServer.try_acquire(path, host, port)
        if server is not None:
            uri = await asyncio.to_thread(server.start)
            _EMBEDDED.register(server)
            return uri, True
        info = read_embedded_info(path)
        if info and pid_alive(info["pid"]) and await _reachable(info["uri"]):
            logger.info(
                "using the embedded server of pid %d at %s for %s", info["pid"], info["uri"], path
            )
            return str(info["uri"]), False
        if loop.time() >= deadline:
            raise EmbeddedUnavailable(
                f"{path} is locked by another process but no live server is advertised in "
                f"{path / EMBEDDED_JSON} after {wait_s:.0f} s"
            )
        await asyncio.sleep(0.2)


async def release_embedded(data_dir: str | Path) -> None:
    server = _EMBEDDED.release(Path(data_dir).resolve())
    if server is not None:
        await asyncio.to_thread(server.stop)


async def take_over(data_dir: str | Path, uri: str) -> bool:
    """Serve ``data_dir`` from this process at ``uri`` if the process serving it is gone.

    ``True`` if the directory is now served from here at that address (this process
    then owns one reference, to give back with :func:`release_embedded`); ``False``
    when the owner lives (a network hiccup), another process took over first, or the
    address is taken by something else.
    """
    path = Path(data_dir).resolve()
    local = _EMBEDDED.acquire_local(path)
    if local is not None:
        if local == uri:
            return True  # another handle here already took over
        await release_embedded(path)  # served here, but not where we connect
        return False
    info = read_embedded_info(path)
    if info and pid_alive(info["pid"]):
        return False
    address = urlsplit(uri)
    server = EmbeddedServer.try_acquire(path, address.hostname or "", address.port or 0)
    if server is None:
        return False
    try:
        await asyncio.to_thread(server.start)
    except OSError as exc:
        logger.error("cannot serve %s at %s again: %s", path, uri, exc)
        return False
    _EMBEDDED.register(server)
    logger.warning("the process serving %s is gone: serving it from here at %s", path, uri)
    return True


def serve(data_dir: str, host: str, port: int) -> int:
    """Serve ``data_dir`` until Ctrl-C / SIGTERM (for analysts and long-lived setups)."""
    path = Path(data_dir).resolve()
    server = EmbeddedServer.try_acquire(path, host, port)
    if server is None:
        info = read_embedded_info(path)
        where = f" at {info['uri']} (pid {info['pid']})" if info else ""
        print(f"{path} is already served by another process{where}")
        return 1
    try:
        uri = server.start()
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc}")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving {path} at {uri}  (pymongo / mongosh / Compass; Ctrl-C to stop)", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    print("stopped")
    return 0
