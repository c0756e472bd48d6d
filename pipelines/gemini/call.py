"""One ``generate()`` call's bookkeeping and how it gives up.

:class:`CallState` counts what the call has spent (requests, waits, 429s, server errors
per model, empty answers) so that every loop in the client stays bounded;
:class:`Pick` is the (model, project, key, limiter) a request goes to. A call that
cannot be served raises ``QuotaDeferred`` with a reason and a resume time
(:func:`defer`, :func:`give_up`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn

from .errors import Failure, QuotaDeferred
from .keys import ApiKey
from .limiter import RateLimiter
from .settings import GeminiSettings


def utc(ts: float) -> datetime:
    """POSIX seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class Pick:
    """Where the next request goes."""

    model: str
    project: str
    key: ApiKey
    limiter: RateLimiter

    @property
    def where(self) -> str:
        """For messages: model, project and key fingerprint (never the secret)."""
        return f"model {self.model}, project {self.project}, key {self.key.fingerprint}"


@dataclass
class CallState:
    """Bookkeeping of one generate() call."""

    waited: float = 0.0  # seconds slept so far (bounded by settings.max_wait)
    attempts: int = 0  # requests sent (bounded by settings.max_attempts)
    rate_retries: int = 0  # per-minute 429s so far (drives the backoff)
    last: Failure | None = None
    server_errors: Counter[str] = field(default_factory=Counter)  # per model
    skipped_models: set[str] = field(default_factory=set)  # given up on for this call
    timed_out_on: str | None = None  # the model of the call's timeout: retried there only
    empty_answers: int = 0
    max_output_tokens: int = 8192


def defer(reason: str, at: float, call: CallState, stats: Counter[str]) -> NoReturn:
    """Give up on the call until ``at`` (``deferred/<reason>`` counted)."""
    stats[f"deferred/{reason}"] += 1
    detail = f"last failure: {call.last.summary}" if call.last else ""
    raise QuotaDeferred(reason, utc(at), detail)


def give_up(now: float, call: CallState, settings: GeminiSettings, stats: Counter[str]) -> NoReturn:
    """Give up on a call whose retries ran out (repeated 429s or server errors)."""
    if call.last is not None and call.last.kind.is_quota:
        defer("rate_limited", now + settings.max_retry_delay, call, stats)
    defer("server_errors", now + settings.server_error_defer, call, stats)
