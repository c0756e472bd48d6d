"""What ``-s JOBDIR=…`` promises after a hard kill, and how the next run keeps it.

Scrapy saves a job directory's state only when the run closes cleanly: the disk
queue's index and the spider state at close, the seen-requests file through a buffer
flushed at close. After ``kill -9``, a forced stop (a second SIGINT/SIGTERM) or a power
cut, that state is half written: the queue is lost while part of the seen-requests file
may be on disk, so resuming from it would *skip* notes that were queued but never
fetched.

So the run marks the directory open (:func:`mark_open`, ``<JOBDIR>/run.open``: pid,
host, run id) and clean again at its close (:func:`mark_closed`). A run that finds the
marker of a process that is gone (:func:`set_aside_if_killed`, called by the crawl
command before Scrapy reads the directory) moves the dead run's state aside, to
``<JOBDIR>/killed-<UTC time>/``, and starts afresh. The promise after a hard kill:

- no note is skipped because of state the killed run left half written;
- every note is requested again (one page request each), but a note the killed run
  already stored is found ``unchanged`` by the incremental check: its images are not
  downloaded again and no Gemini request is spent on it.

After a graceful stop (one SIGINT/SIGTERM, or ``CLOSESPIDER_*``) the run closes cleanly
and the next run resumes the queue as Scrapy documents: no note page is fetched twice.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path

from crawler.core.timeutil import utcnow
from pipelines.mongo import holder_dead
from pipelines.mongo.leases import pid_namespace

logger = logging.getLogger(__name__)

MARKER = "run.open"
# What Scrapy keeps in a job directory (scheduler queue, seen requests, spider state).
STATE_ENTRIES = ("requests.queue", "requests.seen", "spider.state")


def mark_open(jobdir: str | Path, run_id: str | None) -> None:
    """Note in ``jobdir`` that this process's run is using it."""
    path = Path(jobdir)
    path.mkdir(parents=True, exist_ok=True)
    record = {
        "host": socket.gethostname(),
        "pidns": pid_namespace(),
        "pid": os.getpid(),
        "run_id": run_id,
        "started_at": utcnow().isoformat(),
    }
    (path / MARKER).write_text(json.dumps(record), encoding="utf-8")


def mark_closed(jobdir: str | Path) -> None:
    """The run closed cleanly: Scrapy has written the directory's state."""
    (Path(jobdir) / MARKER).unlink(missing_ok=True)


def set_aside_if_killed(jobdir: str | Path) -> Path | None:
    """If ``jobdir`` was left open by a process that is gone, move its state aside and
    return where it went; None when there is nothing to set aside (clean, new, or the
    run holding it is alive, or ran on another host)."""
    path = Path(jobdir)
    marker = path / MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        record = {}  # unreadable: written by a run killed mid-write
    if record and not _dead(record):
        return None
    aside = path / f"killed-{utcnow().strftime('%Y%m%dT%H%M%SZ')}"
    aside.mkdir(exist_ok=True)
    for name in (*STATE_ENTRIES, MARKER):
        entry = path / name
        if entry.exists():
            entry.rename(aside / name)
    logger.warning(
        "JOBDIR %s was left by a run that did not close (pid %s, run %s: killed or "
        "forced to stop); its half-written state is set aside in %s and this run starts "
        "afresh: notes it already stored are found unchanged (no image download, no "
        "model request)",
        path,
        record.get("pid", "?"),
        record.get("run_id", "?"),
        aside,
    )
    return aside


def _dead(record: dict) -> bool:
    started = record.get("started_at")
    try:
        record = {**record, "started_at": datetime.fromisoformat(started) if started else None}
    except (TypeError, ValueError):
        record = {**record, "started_at": None}
    return holder_dead(record, since="started_at")
