"""Slow start per (project, model) and Pacific day.

A pair without a success in this run on this Pacific day gets one request at a time (a
probe): a restart against an exhausted or saturated project costs one 429, not
``max_in_flight`` of them. Other calls wait for the probe (:meth:`SlowStart.probe_of`)
rather than spend a less preferred model's quota. After the pair's first success the
configured and learned limits apply, and while its RPM is unknown the limiter's
spacing (``GEMINI_UNKNOWN_RPM_SPACING``) keeps an unknown limit to about one 429.
"""

from __future__ import annotations

import asyncio
from datetime import date

from .limiter import pacific_day
from .state import Pair


class SlowStart:
    def __init__(self) -> None:
        self._proven: dict[Pair, date] = {}  # the Pacific day of the pair's last success
        self._probes: dict[Pair, asyncio.Future[None]] = {}

    def probe_of(self, pair: Pair) -> asyncio.Future[None] | None:
        """The pair's probe in flight, if any."""
        probe = self._probes.get(pair)
        return probe if probe is not None and not probe.done() else None

    def begin(self, pair: Pair, now: float) -> asyncio.Future[None] | None:
        """A request to ``pair`` leaves now: the probe it is (None once the pair is proven)."""
        if self._proven.get(pair) == pacific_day(now):
            return None
        probe = self._probes[pair] = asyncio.get_running_loop().create_future()
        return probe

    def end(self, pair: Pair, probe: asyncio.Future[None] | None) -> None:
        """The request of :meth:`begin` is over (answered, failed, or never sent)."""
        if probe is not None:
            self._probes.pop(pair, None)
            probe.set_result(None)

    def succeeded(self, pair: Pair, now: float) -> None:
        self._proven[pair] = pacific_day(now)

    def failed(self, pair: Pair) -> None:
        self._proven.pop(pair, None)
