"""Per (project, model) quota: requests per minute, input tokens per minute, requests per day.

Minute limits are sliding 60-second windows; the day counter resets at midnight
America/Los_Angeles. Only admitted requests are counted (a refused one spends nothing),
which is how the real service behaves as far as the public reports go.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sandbox.gemini.clock import next_pacific_midnight, pacific_day
from sandbox.gemini.config import Limits

WINDOW = 60.0
RejectKind = Literal["limit_zero", "per_day", "per_minute", "input_tokens"]


@dataclass(frozen=True)
class Rejection:
    """Why a request is refused; ``retry_after`` is in seconds on the emulator clock."""

    kind: RejectKind
    limit: int
    retry_after: float


@dataclass
class _Usage:
    day: str
    day_count: int
    minute: deque[tuple[float, int]] = field(default_factory=deque)
    minute_tokens: int = 0

    def prune(self, now: float) -> None:
        while self.minute and self.minute[0][0] <= now - WINDOW:
            self.minute_tokens -= self.minute.popleft()[1]

    def add(self, now: float, tokens: int) -> None:
        self.day_count += 1
        self.minute.append((now, tokens))
        self.minute_tokens += tokens


class QuotaTracker:
    """Counts admitted requests; not thread-safe (the caller holds the state lock)."""

    def __init__(self, used_today: Mapping[tuple[str, str], int], start: float) -> None:
        # Pre-consumed quota applies to the quota day the emulator starts in.
        self._initial = dict(used_today)
        self._start_day = pacific_day(start)
        self._usage: dict[tuple[str, str], _Usage] = {}

    def _usage_for(self, project: str, model: str, now: float) -> _Usage:
        day = pacific_day(now)
        usage = self._usage.get((project, model))
        if usage is None:
            used = self._initial.get((project, model), 0) if day == self._start_day else 0
            usage = self._usage[(project, model)] = _Usage(day=day, day_count=used)
        elif usage.day != day:
            usage.day, usage.day_count = day, 0
        usage.prune(now)
        return usage

    def admit(
        self,
        project: str,
        model: str,
        limits: Limits,
        tokens: int,
        now: float,
        *,
        count: bool = True,
    ) -> Rejection | None:
        """Count the request if every limit allows it, else say which one refuses it.

        ``count=False`` only looks (the front door's check, before the content is read)."""
        usage = self._usage_for(project, model, now)
        if limits.rpd == 0 or limits.rpm == 0 or limits.tpm == 0:
            return Rejection("limit_zero", 0, _seconds_to_next_minute(now))
        if usage.day_count >= limits.rpd:
            return Rejection("per_day", limits.rpd, _seconds_to_next_minute(now))
        if len(usage.minute) >= limits.rpm:
            frees_at = usage.minute[len(usage.minute) - limits.rpm][0] + WINDOW
            return Rejection("per_minute", limits.rpm, frees_at - now)
        if usage.minute_tokens + tokens > limits.tpm:
            return Rejection("input_tokens", limits.tpm, _token_wait(usage, tokens, limits, now))
        if count:
            usage.add(now, tokens)
        return None

    def consume_day(self, project: str, model: str, requests: int, now: float) -> None:
        """Mark ``requests`` more of today's quota as spent (scenario knob)."""
        self._usage_for(project, model, now).day_count += requests

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Usage per (project, model) as plain data, for the control endpoint."""
        out = []
        for project, model in sorted(self._usage):
            usage = self._usage_for(project, model, now)
            out.append(
                {
                    "project": project,
                    "model": model,
                    "day": usage.day,
                    "day_resets_at": next_pacific_midnight(now).isoformat(),
                    "requests_today": usage.day_count,
                    "requests_last_minute": len(usage.minute),
                    "input_tokens_last_minute": usage.minute_tokens,
                }
            )
        return out


def _seconds_to_next_minute(now: float) -> float:
    """The retry delay the real service puts on quotas a minute cannot free (< 60 s)."""
    return WINDOW - math.fmod(now, WINDOW)


def _token_wait(usage: _Usage, tokens: int, limits: Limits, now: float) -> float:
    """Seconds until enough tokens leave the window for this request to fit."""
    if tokens > limits.tpm:
        return WINDOW
    excess = usage.minute_tokens + tokens - limits.tpm
    for stamp, spent in usage.minute:
        excess -= spent
        if excess <= 0:
            return stamp + WINDOW - now
    return WINDOW
