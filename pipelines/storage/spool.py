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
processes up again at the next start.

A record that can never be replayed goes aside to ``<name>.bad`` *once* (counted in
:attr:`ClaimedBatch.bad`, never dropped silently, never read again): a line that cannot
be decoded (a torn last write after a crash), a line that is not a JSON object, and a
record the consumer's ``check`` refuses (valid JSON of the wrong shape: no ``note_id``,
wrong types). The claimed file is rewritten without those lines right after they are
appended to ``.bad``, so a replay that dies later does not set them aside again (a
crash between the two steps can at worst copy a line to ``.bad`` twice, never lose it).
``.bad`` keeps the raw lines: fixed by hand, they can be appended to the spool again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.mongo.embedded import pid_alive

logger = logging.getLogger(__name__)

_TYPE = "__type__"
UNDECODABLE = "undecodable"

# A consumer's structural check of one decoded record: why it can never be replayed
# (a short snake_case reason, a stats key part), or None when it is fine.
RecordCheck = Callable[[dict[str, Any]], str | None]


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
    """Records claimed for replay; call :meth:`done` once they are stored.

    ``bad`` counts the lines set aside to ``.bad`` by this claim, ``bad_reasons`` by
    reason (``undecodable`` or the check's reason).
    """

    paths: list[Path]
    records: list[dict[str, Any]]
    bad: int = 0
    bad_reasons: dict[str, int] = field(default_factory=dict)

    def done(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


class Spool:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def bad_path(self) -> Path:
        """Where records that can never be replayed are kept (raw lines)."""
        return self.path.with_name(self.path.name + ".bad")

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records durably (written and fsync'd before returning); their count."""
        return _append_lines(self.path, [dumps_record(r) + "\n" for r in records])

    def set_aside(self, records: Iterable[dict[str, Any]]) -> int:
        """Put records that can never be stored into ``.bad`` (durably); their count."""
        return _append_lines(self.bad_path, [dumps_record(r) + "\n" for r in records])

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

    def claim(self, check: RecordCheck | None = None) -> ClaimedBatch:
        """Take everything spooled so far (older claimed leftovers first); records that
        cannot be decoded, or that ``check`` refuses, go aside to ``.bad`` once."""
        if self.path.exists():
            target = self.path.with_name(f"{self.path.name}.replay-{time.time_ns()}-{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):  # another process claimed it first
                self.path.rename(target)
        batch = ClaimedBatch(self._claimed_files(), [])
        for path in batch.paths:
            good_lines, bad_lines = self._read(path, check, batch)
            if bad_lines:
                _append_lines(self.bad_path, bad_lines)
                _rewrite(path, good_lines)
        if batch.bad:
            logger.error(
                "%d spool records can never be replayed (%s): set aside in %s",
                batch.bad,
                ", ".join(f"{reason}: {n}" for reason, n in sorted(batch.bad_reasons.items())),
                self.bad_path,
            )
        return batch

    def _read(
        self, path: Path, check: RecordCheck | None, batch: ClaimedBatch
    ) -> tuple[list[str], list[str]]:
        """Decode one claimed file into ``batch.records``; its (good, bad) raw lines."""
        good: list[str] = []
        bad: list[str] = []
        with path.open("r", encoding="utf-8", errors="surrogateescape") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                line = line if line.endswith("\n") else line + "\n"
                try:
                    record = loads_record(line)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    reason, detail = UNDECODABLE, str(exc)
                else:
                    reason = check(record) if check is not None else None
                    detail = reason or ""
                if reason is None:
                    good.append(line)
                    batch.records.append(record)
                    continue
                logger.debug("spool %s line %d set aside (%s: %s)", path, lineno, reason, detail)
                bad.append(line)
                batch.bad += 1
                batch.bad_reasons[reason] = batch.bad_reasons.get(reason, 0) + 1
        return good, bad


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _append_lines(path: Path, lines: list[str]) -> int:
    """Append lines with ``O_APPEND``, fsync'd (and the new file's directory entry)."""
    if not lines:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(lines).encode("utf-8", "surrogateescape")
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new file's directory entry must survive a crash too
        _fsync_dir(path.parent)
    return len(lines)


def _rewrite(path: Path, lines: list[str]) -> None:
    """Replace a claimed file by these lines, atomically (write, fsync, rename)."""
    temporary = path.with_name(f".{path.name}.tmp")  # outside the claimed files' glob
    temporary.unlink(missing_ok=True)
    _append_lines(temporary, lines)
    if not lines:
        temporary.touch(mode=0o600)
    os.replace(temporary, path)
    _fsync_dir(path.parent)
