"""The emulator's injectable clock.

Quota windows (a sliding minute, a day that resets at midnight America/Los_Angeles) are
measured on this clock, never on the machine's, so tests move time instead of sleeping:
``emu.clock.advance(61)`` frees a per-minute slot, ``emu.clock.set(next_midnight)``
starts a new quota day. Latency and the 504 deadline are real waits (they exist to test
the client's own timeouts) and do not use it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")


class Clock:
    """Wall-clock time shifted by an offset, or frozen at a point.

    A running clock follows the machine's time plus an offset that ``advance`` and
    ``set`` change; a frozen one only moves when told to. Thread-safe: tests move it
    from their own thread while the server reads it on its loop thread.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._frozen = frozen
        self._offset = 0.0
        self._frozen_at = time.time()
        if start is not None:
            self.set(start)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def time(self) -> float:
        """Current POSIX timestamp on this clock."""
        with self._lock:
            return self._frozen_at if self._frozen else time.time() + self._offset

    def now(self) -> datetime:
        """Current time on this clock, timezone-aware (UTC)."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (or back, if negative) by ``seconds``; return the new now."""
        with self._lock:
            if self._frozen:
                self._frozen_at += seconds
            else:
                self._offset += seconds
        return self.now()

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (naive values are taken as UTC); return the new now."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        target = when.timestamp()
        with self._lock:
            if self._frozen:
                self._frozen_at = target
            else:
                self._offset = target - time.time()
        return self.now()

    def freeze(self) -> None:
        """Stop the clock where it is; it then moves only through ``advance``/``set``."""
        with self._lock:
            if not self._frozen:
                self._frozen_at = time.time() + self._offset
                self._frozen = True


def pacific_day(timestamp: float) -> str:
    """The quota day (ISO date in America/Los_Angeles) that ``timestamp`` falls in."""
    return datetime.fromtimestamp(timestamp, PACIFIC).date().isoformat()


def next_pacific_midnight(timestamp: float) -> datetime:
    """The first midnight America/Los_Angeles strictly after ``timestamp``, in UTC.

    Built from the local date so DST days (23 or 25 hours) come out right.
    """
    local = datetime.fromtimestamp(timestamp, PACIFIC)
    next_day = local.date() + timedelta(days=1)
    midnight = datetime(next_day.year, next_day.month, next_day.day, tzinfo=PACIFIC)
    return midnight.astimezone(UTC)
