"""MongoDB connection: ``MONGO_URI``, or the embedded MongoDB-wire server (secantus).

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
process takes the directory over on the same address (:meth:`MongoHandle.take_over`,
called by storage when writes fail) and its client reconnects. For long-lived access
run ``python -m pipelines.mongo serve`` (also what analysts use with pymongo, mongosh
or Compass); crawls then connect to it.

Also here: :class:`MongoQuotaStateStore` (the Gemini client's persisted quota state) and
the run lease (``acquire_lease`` / ``renew_lease`` / ``release_lease``) used as the
overlap guard between scheduled runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from pipelines.spool import pid_alive

logger = logging.getLogger(__name__)

EMBEDDED_JSON = "embedded.json"
EMBEDDED_LOCK = "embedded.lock"
QUOTA_COLLECTION = "gemini_quota"
LEASE_COLLECTION = "leases"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Aware UTC now, truncated to milliseconds (BSON dates keep milliseconds only, so
    values compare equal after a round trip through Mongo or the spool)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --- Settings -------------------------------------------------------------------------


def _get(settings: Mapping[str, Any] | Any, name: str, default: Any) -> Any:
    """A setting, else the environment variable of the same name, else ``default``.

    Settings win (``-s NAME=value`` and settings.py); the env fallback covers knobs
    that settings.py does not declare.
    """
    value = settings.get(name) if hasattr(settings, "get") else None
    if value is None or value == "":
        value = os.environ.get(name)
    return default if value is None or value == "" else value


@dataclass(frozen=True)
class MongoSettings:
    """Everything storage reads from the Scrapy settings (or env vars of the same name)."""

    uri: str = ""  # MONGO_URI; empty → embedded server on data_dir
    database: str = "xhs"  # MONGO_DATABASE
    data_dir: str = "data/mongo"  # MONGO_DATA_DIR
    embedded_host: str = "127.0.0.1"  # MONGO_EMBEDDED_HOST
    embedded_port: int = 0  # MONGO_EMBEDDED_PORT; 0 = any free port
    embedded_wait_s: float = 15.0  # MONGO_EMBEDDED_WAIT: wait for another owner's server
    batch_size: int = 100  # MONGO_BATCH_SIZE: notes per bulk_write
    flush_interval_s: float = 2.0  # MONGO_FLUSH_INTERVAL: max age of a buffered note
    spool_path: str = "data/spool/notes.jsonl"  # MONGO_SPOOL_PATH
    retry_times: int = 3  # MONGO_RETRY_TIMES: retries of a batch on transient errors
    retry_backoff_s: float = 0.5  # MONGO_RETRY_BACKOFF: first delay, doubled each retry
    retry_backoff_max_s: float = 8.0  # MONGO_RETRY_BACKOFF_MAX
    # MONGO_SERVER_SELECTION_TIMEOUT_MS; keep ≥ 1000: pymongo re-checks a lost server
    # at most every 500 ms, a shorter wait misses a server that is back
    server_selection_timeout_ms: int = 5000
    # MONGO_SOCKET_TIMEOUT_MS: a hung server must not hang the crawl's close; a
    # timeout is retried, then the batch goes to the spool
    socket_timeout_ms: int = 60_000
    probe_interval_s: float = 10.0  # MONGO_PROBE_INTERVAL: re-check a down database
    max_string_chars: int = 100_000  # MONGO_MAX_STRING_CHARS: longer strings truncated

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | Any) -> MongoSettings:
        d = cls()
        return cls(
            uri=str(_get(settings, "MONGO_URI", d.uri)).strip(),
            database=str(_get(settings, "MONGO_DATABASE", d.database)),
            data_dir=str(_get(settings, "MONGO_DATA_DIR", d.data_dir)),
            embedded_host=str(_get(settings, "MONGO_EMBEDDED_HOST", d.embedded_host)),
            embedded_port=int(_get(settings, "MONGO_EMBEDDED_PORT", d.embedded_port)),
            embedded_wait_s=float(_get(settings, "MONGO_EMBEDDED_WAIT", d.embedded_wait_s)),
            batch_size=max(1, int(_get(settings, "MONGO_BATCH_SIZE", d.batch_size))),
            flush_interval_s=float(_get(settings, "MONGO_FLUSH_INTERVAL", d.flush_interval_s)),
            spool_path=str(_get(settings, "MONGO_SPOOL_PATH", d.spool_path)),
            retry_times=max(0, int(_get(settings, "MONGO_RETRY_TIMES", d.retry_times))),
            retry_backoff_s=float(_get(settings, "MONGO_RETRY_BACKOFF", d.retry_backoff_s)),
            retry_backoff_max_s=float(
                _get(settings, "MONGO_RETRY_BACKOFF_MAX", d.retry_backoff_max_s)
            ),
            server_selection_timeout_ms=int(
                _get(settings, "MONGO_SERVER_SELECTION_TIMEOUT_MS", d.server_selection_timeout_ms)
            ),
            socket_timeout_ms=int(_get(settings, "MONGO_SOCKET_TIMEOUT_MS", d.socket_timeout_ms)),
            probe_interval_s=float(_get(settings, "MONGO_PROBE_INTERVAL", d.probe_interval_s)),
            max_string_chars=max(
                1, int(_get(settings, "MONGO_MAX_STRING_CHARS", d.max_string_chars))
            ),
        )


_SECRET_QUERY_KEY = re.compile(r"pass|secret|token|key|authmechanismproperties", re.I)


def mask_uri(uri: str) -> str:
    """The URI with credentials masked: the only form a URI is ever logged in.

    ``mongodb://user:pw@h1,h2/db?authSource=admin&tlsCertificateKeyFilePassword=x``
    → ``mongodb://***@h1,h2/db?authSource=admin&tlsCertificateKeyFilePassword=***``.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "***"
    rest, qsep, query = rest.partition("?")
    hosts, slash, path = rest.partition("/")
    if "@" in hosts:
        hosts = "***@" + hosts.rsplit("@", 1)[1]
    masked = f"{scheme}://{hosts}{slash}{path}"
    if qsep:
        pairs = [
            (k, "***" if _SECRET_QUERY_KEY.search(k) else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        masked += "?" + urlencode(pairs, safe="*:/,")
    return masked


# --- Embedded server ------------------------------------------------------------------


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


# --- Handles ----------------------------------------------------------------------------


class MongoHandle:
    """One client and database for a crawler: the URI's server or the embedded one.

    ``await start()`` is idempotent and safe to call concurrently; ``close()`` also
    releases the embedded server reference.
    """

    def __init__(self, settings: MongoSettings) -> None:
        self.settings = settings
        self.embedded = not settings.uri
        self.uri_fingerprint = "" if self.embedded else mask_uri(settings.uri)
        self._client: AsyncMongoClient | None = None
        self._db: AsyncDatabase | None = None
        self._owns_embedded = False
        self._uri = ""  # the embedded server's address
        self._lock = asyncio.Lock()

    @property
    def client(self) -> AsyncMongoClient:
        if self._client is None:
            raise RuntimeError("MongoHandle used before start()")
        return self._client

    @property
    def db(self) -> AsyncDatabase:
        if self._db is None:
            raise RuntimeError("MongoHandle used before start()")
        return self._db

    @property
    def started(self) -> bool:
        return self._client is not None

    async def start(self) -> MongoHandle:
        async with self._lock:
            if self._client is not None:
                return self
            s = self.settings
            uri = s.uri
            if self.embedded:
                uri, self._owns_embedded = await ensure_embedded(
                    s.data_dir, host=s.embedded_host, port=s.embedded_port, wait_s=s.embedded_wait_s
                )
                self.uri_fingerprint = mask_uri(uri)
                self._uri = uri
            self._client = AsyncMongoClient(
                uri,
                tz_aware=True,
                serverSelectionTimeoutMS=s.server_selection_timeout_ms,
                connectTimeoutMS=s.server_selection_timeout_ms,
                socketTimeoutMS=s.socket_timeout_ms,
                appname="xhs-crawler",
            )
            self._db = self._client[s.database]
            logger.info(
                "MongoDB %s database %r (%s)",
                self.uri_fingerprint,
                s.database,
                "embedded" if self.embedded else "MONGO_URI",
            )
            return self

    async def take_over(self) -> bool:
        """Keep an embedded database reachable after its serving process is gone.

        For a handle on another process's embedded server: when that process has
        exited (crashed or finished), serve the directory from this process on the same
        address, so this client (and everything using it) reconnects without noticing.
        ``True`` if the directory is now served from here. Called by storage when
        writes fail; a no-op for ``MONGO_URI`` and for the owner itself.
        """
        if not self.embedded or self._owns_embedded or not self._uri:
            return False
        async with self._lock:
            path = Path(self.settings.data_dir).resolve()
            local = _EMBEDDED.acquire_local(path)
            if local is not None:
                if local == self._uri:
                    self._owns_embedded = True  # another handle here already took over
                    return True
                await release_embedded(path)  # served here, but not where we connect
                return False
            info = read_embedded_info(path)
            if info and pid_alive(info["pid"]):
                return False  # the owner lives: a network hiccup, not a takeover
            address = urlsplit(self._uri)
            server = EmbeddedServer.try_acquire(path, address.hostname or "", address.port or 0)
            if server is None:
                return False  # another process took it over first
            try:
                await asyncio.to_thread(server.start)
            except OSError as exc:  # the address is taken by something else
                logger.error("cannot serve %s at %s again: %s", path, self._uri, exc)
                return False
            _EMBEDDED.register(server)
            self._owns_embedded = True
            logger.warning(
                "the process serving %s is gone: serving it from here at %s", path, self._uri
            )
            return True

    async def close(self) -> None:
        async with self._lock:
            if self._client is not None:
                await self._client.close()
                self._client = None
                self._db = None
            if self._owns_embedded:
                self._owns_embedded = False
                await release_embedded(self.settings.data_dir)


_CRAWLER_ATTR = "_xhs_mongo_handle"


async def get_mongo(crawler: Any) -> MongoHandle:
    """The crawler's shared, started handle (created on first use, closed at engine stop)."""
    from scrapy import signals

    handle: MongoHandle | None = getattr(crawler, _CRAWLER_ATTR, None)
    if handle is None:
        handle = MongoHandle(MongoSettings.from_settings(crawler.settings))
        setattr(crawler, _CRAWLER_ATTR, handle)
        crawler.signals.connect(handle.close, signal=signals.engine_stopped, weak=False)
    return await handle.start()


async def close_mongo(crawler: Any) -> None:
    """Close the crawler's handle now (what ``engine_stopped`` does; for scripts and tests)."""
    handle: MongoHandle | None = getattr(crawler, _CRAWLER_ATTR, None)
    if handle is not None:
        await handle.close()


_PROCESS_HANDLES: dict[tuple[int, MongoSettings], MongoHandle] = {}


async def open_database(settings: MongoSettings | Any) -> tuple[AsyncMongoClient, AsyncDatabase]:
    """``(client, db)`` shared per process and event loop, for code without a crawler.

    Accepts a :class:`MongoSettings` or anything settings-like. Close them all with
    :func:`close_databases`.
    """
    ms = settings if isinstance(settings, MongoSettings) else MongoSettings.from_settings(settings)
    key = (id(asyncio.get_running_loop()), ms)
    handle = _PROCESS_HANDLES.get(key)
    if handle is None:
        handle = _PROCESS_HANDLES[key] = MongoHandle(ms)
    await handle.start()
    return handle.client, handle.db


async def close_databases() -> None:
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _PROCESS_HANDLES if k[0] == loop_id]:
        await _PROCESS_HANDLES.pop(key).close()


def crawl_run_id(crawler: Any) -> str:
    """The run id shared by storage (``notes.crawl_run_id``, ``note_stats``) and the run
    record: setting/env ``CRAWL_RUN_ID`` if given, else generated once per crawler
    (``20260131T120000Z-1a2b3c``) and kept on ``crawler.crawl_run_id``."""
    run_id = getattr(crawler, "crawl_run_id", None)
    if not run_id:
        run_id = str(_get(crawler.settings, "CRAWL_RUN_ID", "")) or (
            f"{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        )
        crawler.crawl_run_id = run_id
    return run_id


# --- Gemini quota state -------------------------------------------------------------------


def _escape_key(key: str) -> str:
    return quote(key, safe="")  # reversible: '.', '$' and '%' become %2E, %24, %25


def _escape_keys(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, Mapping):
        return {fn(str(k)): _escape_keys(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_keys(v, fn) for v in value]
    return value


class MongoQuotaStateStore:
    """The Gemini client's ``QuotaStateStore`` in collection ``gemini_quota``.

    One document ``{_id: doc_id (default "state"), state: {...}, updated_at}``; the
    state is the client's opaque dict (keys like ``project/model`` contain dots, so
    they are percent-escaped on save and restored on load, exactly). Last writer wins
    between concurrent processes; the client saves its whole state each time.
    """

    def __init__(self, db: AsyncDatabase, doc_id: str = "state", *, clock: Clock = utcnow):
        self._coll = db[QUOTA_COLLECTION]
        self._doc_id = doc_id
        self._clock = clock

    async def load(self) -> dict:
        doc = await self._coll.find_one({"_id": self._doc_id})
        if not doc or not isinstance(doc.get("state"), Mapping):
            return {}
        return _escape_keys(doc["state"], unquote)

    async def save(self, state: dict) -> None:
        await self._coll.replace_one(
            {"_id": self._doc_id},
            {"state": _escape_keys(state, _escape_key), "updated_at": self._clock()},
            upsert=True,
        )


# --- Run lease (overlap guard) ----------------------------------------------------------


async def acquire_lease(
    db: AsyncDatabase, name: str, owner: str, ttl_s: float, *, now: datetime | None = None
) -> bool:
    """Take lease ``name`` for ``owner`` until now + ``ttl_s``; ``True`` if held now.

    Atomic: one findOneAndUpdate on ``_id: name`` whose filter matches only a lease
    that is expired or already ours; a live lease of another owner makes the upsert
    collide on ``_id`` (DuplicateKeyError) → ``False``. A crashed run's lease expires
    after ``ttl_s`` and is taken over. Times are the caller's clock (``now``).
    """
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    try:
        doc = await db[LEASE_COLLECTION].find_one_and_update(
            {"_id": name, "$or": [{"expires_at": {"$lte": now}}, {"owner": owner}]},
            [
                {
                    "$set": {
                        "owner": {"$literal": owner},
                        "expires_at": expires,
                        "renewed_at": now,
                        "acquired_at": {
                            "$cond": [{"$eq": ["$owner", {"$literal": owner}]}, "$acquired_at", now]
                        },
                    }
                }
            ],
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        return False
    return bool(doc) and doc.get("owner") == owner


async def renew_lease(
    db: AsyncDatabase, name: str, owner: str, ttl_s: float, *, now: datetime | None = None
) -> bool:
    """Extend our lease; ``False`` if it is no longer ours (taken over after expiry)."""
    now = now or utcnow()
    result = await db[LEASE_COLLECTION].update_one(
        {"_id": name, "owner": owner},
        {"$set": {"expires_at": now + timedelta(seconds=ttl_s), "renewed_at": now}},
    )
    return result.matched_count == 1


async def release_lease(db: AsyncDatabase, name: str, owner: str) -> bool:
    """Give the lease back (only if still ours); ``True`` if a lease was removed."""
    result = await db[LEASE_COLLECTION].delete_one({"_id": name, "owner": owner})
    return result.deleted_count == 1


# --- CLI --------------------------------------------------------------------------------


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.mongo")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the embedded data directory over TCP")
    p_serve.add_argument("--data", default=MongoSettings.data_dir)
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=27017)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return serve(args.data, args.host, args.port)


if __name__ == "__main__":
    raise SystemExit(main())
