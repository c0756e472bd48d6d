"""The storage spool: records that could not reach MongoDB, kept on disk until replayed.

Format: UTF-8 JSON lines, one record per line, appended with ``O_APPEND`` and
``fsync``'d before :meth:`Spool.append` returns. JSON has no date type, so values are
tagged explicitly: a datetime becomes ``{"__type__": "datetime", "value": ISO-8601}``
and a dict that itself has a ``__type__`` key is wrapped as
``{"__type__": "dict", "value": {...}}``, which makes the round trip exact for any
JSON-like data.

Replay claims the whole spool by renaming it to ``<name>.replay-<pid>-<ns>`` (atomic:
two processes never replay the same records), hands the records out, and deletes the
claimed file only once the consumer says they are stored. A crash during replay leaves
the claimed file in place; :meth:`Spool.claim` picks leftover claimed files of dead
processes up again at the next start. A line that cannot be decoded (a torn last write after a crash) is
moved to ``<name>.bad`` rather than dropped silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.mongo.embedded import pid_alive

logger = logging.getLogger(__name__)

_TYPE = "__type__"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_TYPE: "datetime", "value": value.isoformat()}
    if isinstance(value, dict):
        encoded = {str(k): _encode(v) for k, v in value.items()}
        return {_TYPE: "dict", "value": encoded} if _TYPE in value else encoded
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        tag = value.get(_TYPE)
        if tag == "datetime":
            return datetime.fromisoformat(value["value"])
        if tag == "dict":
            return {k: _decode(v) for k, v in value["value"].items()}
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dumps_record(record: dict[str, Any]) -> str:
    """One spool line (no newline). ``ensure_ascii`` keeps any stray surrogate writable."""
    return json.dumps(_encode(record), ensure_ascii=True, separators=(",", ":"))


def loads_record(line: str) -> dict[str, Any]:
    record = _decode(json.loads(line))
    if not isinstance(record, dict):
        raise ValueError("spool record is not an object")
    return record


@dataclass
class ClaimedBatch:
    """Records claimed for replay; call :meth:`done` once they are stored."""

    paths: list[Path]
    records: list[dict[str, Any]]

    def done(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


class Spool:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records durably (written and fsync'd before returning); their count."""
        lines = [dumps_record(r) + "\n" for r in records]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(lines).encode("utf-8")
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # the new file's directory entry must survive a crash too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return len(lines)

    def _claimed_files(self) -> list[Path]:
        """Claimed files of this process and of dead ones (a live one is replaying its own)."""
        if not self.path.parent.is_dir():
            return []
        mine = []
        for path in sorted(self.path.parent.glob(f"{self.path.name}.replay-*")):
            pid = path.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or int(pid) == os.getpid() or not pid_alive(int(pid)):
                mine.append(path)
        return mine

    def pending(self) -> bool:
        """Whether anything waits to be replayed (cheap: no reading)."""
        return self.path.exists() or bool(self._claimed_files())

    def claim(self) -> ClaimedBatch:
        """Take everything spooled so far (older claimed leftovers first)."""
        if self.path.exists():
            target = self.path.with_name(f"{self.path.name}.replay-{time.time_ns()}-{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):  # another process claimed it first
                self.path.rename(target)
        paths = self._claimed_files()
        records: list[dict[str, Any]] = []
        for path in paths:
            records.extend(self._read(path))
        return ClaimedBatch(paths, records)

    def _read(self, path: Path) -> Iterator[dict[str, Any]]:
        with path.open("r", encoding="utf-8", errors="surrogateescape") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield loads_record(line)
                except (ValueError, KeyError, TypeError) as exc:
                    logger.error(
                        "spool %s line %d unreadable (%s): kept in %s.bad",
                        path,
                        lineno,
                        exc,
                        self.path.name,
                    )
                    with self.path.with_name(self.path.name + ".bad").open(
                        "a", encoding="utf-8", errors="surrogateescape"
                    ) as bad:
                        bad.write(line if line.endswith("\n") else line + "\n")
