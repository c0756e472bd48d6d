"""The run lease: the overlap guard between scheduled runs (collection ``leases``).

A lease document is ``{_id: name, owner, acquired_at, renewed_at, expires_at}`` plus
what the holder says about itself (:func:`this_process`: ``host``, ``pid``, ``run_id``,
and the run's ``spider`` and ``args``), so an operator sees who holds it and with what.

A live lease of another owner blocks :func:`acquire_lease` until it expires. A lease
whose holder is known to be dead is taken over at once (:func:`take_over_dead_lease`):
after ``kill -9`` or a forced stop the next run need not wait ``RUN_LEASE_TTL``. Dead
means: the holder ran on *this* host, in this pid namespace (``pidns``: containers
sharing a host name have their own pids), and its pid no longer exists, or that pid now
belongs to a process started after the lease was taken (the pid was reused). A holder
elsewhere is never judged from here: its lease expires by itself.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from crawler.core.names import LEASES
from crawler.core.timeutil import as_utc, utcnow
from pipelines.mongo.embedded import pid_alive

__all__ = [
    "acquire_lease",
    "holder_dead",
    "process_started_after",
    "release_lease",
    "renew_lease",
    "take_over_dead_lease",
    "this_process",
]

# Holder fields a lease may carry besides the lease's own.
HOLDER_FIELDS = ("host", "pidns", "pid", "run_id", "spider", "args")


def pid_namespace() -> int | None:
    """This process's pid namespace (Linux: the inode of ``/proc/self/ns/pid``), or None."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def this_process(run_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """The holder fields of a lease taken by this process (``extra``: spider, args …)."""
    return {
        "host": socket.gethostname(),
        "pidns": pid_namespace(),
        "pid": os.getpid(),
        "run_id": run_id,
        **extra,
    }


async def acquire_lease(
    db: AsyncDatabase,
    name: str,
    owner: str,
    ttl_s: float,
    *,
    now: datetime | None = None,
    holder: Mapping[str, Any] | None = None,
) -> bool:
    """Take lease ``name`` for ``owner`` until now + ``ttl_s``; ``True`` if held now.

    Atomic: one findOneAndUpdate on ``_id: name`` whose filter matches only a lease
    that is expired or already ours; a live lease of another owner makes the upsert
    collide on ``_id`` (DuplicateKeyError) → ``False``. A crashed run's lease expires
    after ``ttl_s`` and is taken over (at once, by :func:`take_over_dead_lease`, when
    its holder is known dead). Times are the caller's clock (``now``). ``holder``'s
    fields (:data:`HOLDER_FIELDS`) are stored on the lease.
    """
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    try:
        doc = await db[LEASES].find_one_and_update(
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
                        **{key: {"$literal": value} for key, value in _holder(holder).items()},
                    }
                }
            ],
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        return False
    return bool(doc) and doc.get("owner") == owner


async def take_over_dead_lease(
    db: AsyncDatabase,
    name: str,
    owner: str,
    ttl_s: float,
    *,
    now: datetime | None = None,
    holder: Mapping[str, Any] | None = None,
    dead: Callable[[Mapping[str, Any]], bool] | None = None,
) -> dict[str, Any] | None:
    """Take lease ``name`` from a holder that is dead (``dead(lease)``, by default
    :func:`holder_dead`); the dead holder's lease document, or None if there is none
    to take (free, ours, alive, or taken by someone else meanwhile).

    Atomic: the update matches only while the dead owner still holds the lease, so of
    two runs taking over at once exactly one gets it.
    """
    now = now or utcnow()
    dead = dead or holder_dead
    lease = await db[LEASES].find_one({"_id": name})
    if lease is None or lease.get("owner") == owner or not dead(lease):
        return None
    result = await db[LEASES].update_one(
        {"_id": name, "owner": lease.get("owner")},
        {
            "$set": {
                "owner": owner,
                "acquired_at": now,
                "renewed_at": now,
                "expires_at": now + timedelta(seconds=ttl_s),
                "took_over": {"owner": lease.get("owner"), "run_id": _run_id(lease), "at": now},
                **_holder(holder),
            }
        },
    )
    return dict(lease) if result.modified_count == 1 else None


def holder_dead(
    lease: Mapping[str, Any],
    *,
    host: str | None = None,
    alive: Callable[[int], bool] = pid_alive,
    started_after: Callable[[int, datetime], bool] | None = None,
    since: str = "acquired_at",
) -> bool:
    """Whether the lease's holder is known dead: it ran on this host (``host``) and its
    pid is gone, or that pid now belongs to a process started after the lease was taken
    (its ``since`` field). A lease of another host, or without a holder pid, is never
    judged dead. Any record with ``host`` and ``pid`` fields can be judged (a
    ``crawl_runs`` record with ``since="started_at"``)."""
    host = host or socket.gethostname()
    lease_host, pid = _host_and_pid(lease)
    if lease_host != host or pid is None:
        return False
    namespace = lease.get("pidns")
    if namespace is not None and namespace != pid_namespace():
        return False  # another container on a host of the same name: its pids are not ours
    if not alive(pid):
        return True
    acquired = lease.get(since)
    reused = started_after or process_started_after
    return isinstance(acquired, datetime) and reused(pid, as_utc(acquired))


def process_started_after(pid: int, moment: datetime) -> bool:
    """Whether process ``pid`` started after ``moment`` (a reused pid); False if unknown."""
    import psutil

    try:
        started = psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return False
    return started > moment.timestamp() + 1  # create_time is rounded to clock ticks


async def renew_lease(
    db: AsyncDatabase, name: str, owner: str, ttl_s: float, *, now: datetime | None = None
) -> bool:
    """Extend our lease; ``False`` if it is no longer ours (taken over after expiry)."""
    now = now or utcnow()
    result = await db[LEASES].update_one(
        {"_id": name, "owner": owner},
        {"$set": {"expires_at": now + timedelta(seconds=ttl_s), "renewed_at": now}},
    )
    return result.matched_count == 1


async def release_lease(db: AsyncDatabase, name: str, owner: str) -> bool:
    """Give the lease back (only if still ours); ``True`` if a lease was removed."""
    result = await db[LEASES].delete_one({"_id": name, "owner": owner})
    return result.deleted_count == 1


# --- holder fields ----------------------------------------------------------------------


def _holder(holder: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: holder[key] for key in HOLDER_FIELDS if holder and key in holder}


def _host_and_pid(lease: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """From the holder fields, else from an owner written as ``host:pid:run_id``."""
    host, pid = lease.get("host"), lease.get("pid")
    if host is None or pid is None:
        parts = str(lease.get("owner") or "").split(":", 2)
        if len(parts) == 3 and parts[1].isdigit():
            host, pid = parts[0], int(parts[1])
    if isinstance(pid, bool) or not isinstance(pid, int) or not isinstance(host, str):
        return None, None
    return host, pid


def _run_id(lease: Mapping[str, Any]) -> str | None:
    run_id = lease.get("run_id")
    if isinstance(run_id, str):
        return run_id
    parts = str(lease.get("owner") or "").split(":", 2)
    return parts[2] if len(parts) == 3 else None
