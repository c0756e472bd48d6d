"""Quota knowledge of the client, and how it is persisted between runs.

``QuotaState`` is the single owner of what the client has learned about quotas: the
limiter of every (project, model), which pairs are out until when, learned limits,
dropped models and disabled keys. It round-trips through a JSON-able dict so a
scheduled run an hour later does not knock on a project that is out for the day.

Persisted shape (version 1). Lists of records rather than dicts keyed by model names,
because model names contain dots, which MongoDB field names must not::

    {
      "version": 1,
      "saved_at": "2026-11-29T15:00:00+00:00",           # ISO-8601 UTC
      "exhausted": [                                     # out until a moment
        {"project": "projA", "model": "gemini-2.5-flash-lite",
         "until": "2026-11-30T08:00:00+00:00", "reason": "per_day"}],
      "learned_limits": [                                # from 429 quotaValue; null = unknown
        {"project": "projA", "model": "gemini-2.5-flash-lite",
         "rpm": null, "tpm": null, "rpd": 20}],
      "day_counts": [                                    # requests sent per Pacific day
        {"project": "projA", "model": "gemini-2.5-flash-lite",
         "day": "2026-11-29", "count": 20}],
      "dropped_models": [                                # 404: gone for every project
        {"model": "gemini-1.5-flash", "reason": "model_not_found", "at": "…"}],
      "dropped_for_project": [                           # 429 with limit 0
        {"project": "projA", "model": "gemini-2.0-flash", "reason": "limit_zero", "at": "…"}],
      "disabled_keys": [                                 # by fingerprint only, never the key
        {"key_fp": "k:1a2b3c4d", "project": "projA", "reason": "bad_key", "at": "…"}]
    }

Project names are the operator's labels from ``GEMINI_API_KEYS`` (keys without a
project are labelled ``solo-<fingerprint>``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, runtime_checkable

from .limiter import ModelLimits, RateLimiter, pacific_day

STATE_VERSION = 1

Pair = tuple[str, str]  # (project, model)


@runtime_checkable
class QuotaStateStore(Protocol):
    """Where the quota state lives between runs (memory here; Mongo in pipelines/mongo.py)."""

    async def load(self) -> dict[str, Any]:
        """The last saved state dict, or ``{}`` when nothing was saved."""
        ...

    async def save(self, state: dict[str, Any]) -> None:
        """Replace the saved state by ``state`` (the shape in this module's docstring)."""
        ...


@dataclass(frozen=True)
class Grant:
    """A shared ledger's answer to one request: ``granted``, the day's count after it, the
    daily limit other workers learned (None: unknown) and their blocked-until (POSIX)."""

    granted: bool
    count: int
    limit: int | None = None
    blocked_until: float | None = None


@runtime_checkable
class QuotaLedger(Protocol):
    """The per-(project, model) Pacific-day request count shared by every worker on one
    store (``pipelines.mongo.quota.MongoQuotaLedger``): atomic updates, no read-modify-write.
    Times are POSIX seconds."""

    async def reserve(
        self, project: str, model: str, now: float, limit: int | None, n: int = 1
    ) -> Grant:
        """Count ``n`` requests (all or none) unless the day's count would pass ``limit``
        (or the stored limit) or the pair is blocked; the answer says which."""
        ...

    async def refund(self, project: str, model: str, sent_at: float, n: int = 1) -> None:
        """Take back ``n`` requests not spent (a 429 spends no quota; an unused block)."""
        ...

    async def block(
        self, project: str, model: str, now: float, until: float, limit: int | None
    ) -> None:
        """A per-day 429: out until ``until`` for everyone; ``limit`` its quotaValue."""
        ...


@runtime_checkable
class MinuteWindow(Protocol):
    """The per-minute request window of each (project, model) shared by every worker
    (``pipelines.enrichment.minute_window.RedisMinuteWindow``); POSIX seconds."""

    async def admit(self, project: str, model: str, now: float, rpm: int) -> float:
        """Book one request if the window has room (0.0), else when it will have room."""
        ...


class MemoryStateStore:
    """A process-local store; hands out copies so callers cannot alias the saved state."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self._state: dict[str, Any] = copy.deepcopy(dict(state or {}))
        self.saves = 0

    async def load(self) -> dict[str, Any]:
        return copy.deepcopy(self._state)

    async def save(self, state: dict[str, Any]) -> None:
        self._state = copy.deepcopy(state)
        self.saves += 1

    @property
    def state(self) -> dict[str, Any]:
        return copy.deepcopy(self._state)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _ts(text: str) -> float:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass
class _Mark:
    reason: str
    at: float


@dataclass
class _Exhaustion:
    until: float
    reason: str


class QuotaState:
    """Runtime quota book of one client (not thread-safe; one event loop)."""

    def __init__(
        self, configured: Mapping[str, ModelLimits] | None = None, unknown_rpm_spacing: float = 0.0
    ) -> None:
        self._configured = dict(configured or {})
        self._spacing = unknown_rpm_spacing
        self._limiters: dict[Pair, RateLimiter] = {}
        self._learned: dict[Pair, ModelLimits] = {}
        self._exhausted: dict[Pair, _Exhaustion] = {}
        self._dropped_models: dict[str, _Mark] = {}
        self._dropped_for_project: dict[Pair, _Mark] = {}
        self._disabled_keys: dict[str, tuple[str, _Mark]] = {}

    # --- limiters ------------------------------------------------------------------
    def limiter(self, project: str, model: str) -> RateLimiter:
        pair = (project, model)
        limiter = self._limiters.get(pair)
        if limiter is None:
            limits = self._configured.get(model, ModelLimits())
            if pair in self._learned:
                limits = limits.lowered(self._learned[pair])
            limiter = self._limiters[pair] = RateLimiter(limits, self._spacing)
        return limiter

    def learn(self, project: str, model: str, limits: ModelLimits) -> bool:
        """Lower the limits of a pair to what a 429 reported; True if that is news."""
        pair = (project, model)
        self._learned[pair] = self._learned.get(pair, ModelLimits()).lowered(limits)
        return self.limiter(project, model).lower(limits)

    # --- exhaustion ----------------------------------------------------------------
    def mark_exhausted(self, project: str, model: str, until: float, reason: str) -> None:
        self._exhausted[(project, model)] = _Exhaustion(until, reason)

    def exhausted_until(self, project: str, model: str, now: float) -> float | None:
        """When the pair is usable again, or None if it is usable now."""
        mark = self._exhausted.get((project, model))
        if mark is None:
            return None
        if mark.until <= now:
            del self._exhausted[(project, model)]
            return None
        return mark.until

    # --- models and keys -------------------------------------------------------------
    def drop_model(self, model: str, reason: str, now: float) -> None:
        self._dropped_models.setdefault(model, _Mark(reason, now))

    def is_model_dropped(self, model: str) -> bool:
        return model in self._dropped_models

    def drop_for_project(self, project: str, model: str, reason: str, now: float) -> None:
        self._dropped_for_project.setdefault((project, model), _Mark(reason, now))

    def is_dropped_for_project(self, project: str, model: str) -> bool:
        return (project, model) in self._dropped_for_project

    def disable_key(self, key_fp: str, project: str, reason: str, now: float) -> None:
        self._disabled_keys.setdefault(key_fp, (project, _Mark(reason, now)))

    def is_key_disabled(self, key_fp: str) -> bool:
        return key_fp in self._disabled_keys

    def disabled_key_reason(self, key_fp: str) -> str | None:
        entry = self._disabled_keys.get(key_fp)
        return entry[1].reason if entry else None

    # --- persistence -------------------------------------------------------------------
    def to_dict(self, now: float) -> dict[str, Any]:
        """The JSON-able persisted form (see module docstring); expired marks are left out."""
        today = pacific_day(now)
        return {
            "version": STATE_VERSION,
            "saved_at": _iso(now),
            "exhausted": [
                {"project": p, "model": m, "until": _iso(e.until), "reason": e.reason}
                for (p, m), e in sorted(self._exhausted.items())
                if e.until > now
            ],
            "learned_limits": [
                {"project": p, "model": m, **limits.as_dict()}
                for (p, m), limits in sorted(self._learned.items())
            ],
            "day_counts": [
                {"project": p, "model": m, "day": lim.day.isoformat(), "count": lim.day_count}
                for (p, m), lim in sorted(self._limiters.items())
                if lim.day == today and lim.day_count > 0
            ],
            "dropped_models": [
                {"model": m, "reason": mark.reason, "at": _iso(mark.at)}
                for m, mark in sorted(self._dropped_models.items())
            ],
            "dropped_for_project": [
                {"project": p, "model": m, "reason": mark.reason, "at": _iso(mark.at)}
                for (p, m), mark in sorted(self._dropped_for_project.items())
            ],
            "disabled_keys": [
                {"key_fp": fp, "project": project, "reason": mark.reason, "at": _iso(mark.at)}
                for fp, (project, mark) in sorted(self._disabled_keys.items())
            ],
        }

    def load(self, data: Mapping[str, Any], now: float) -> None:
        """Merge a persisted dict into this state; stale or malformed records are skipped.

        Loading is additive: it can only make the client more careful.
        """
        if not data or data.get("version") != STATE_VERSION:
            return
        today = pacific_day(now)

        def learned(rec: Mapping[str, Any]) -> None:
            limits = ModelLimits(**{k: _opt_int(rec.get(k)) for k in ("rpm", "tpm", "rpd")})
            self.learn(str(rec["project"]), str(rec["model"]), limits)

        def exhausted(rec: Mapping[str, Any]) -> None:
            until = _ts(str(rec["until"]))
            if until > now:
                self.mark_exhausted(
                    str(rec["project"]), str(rec["model"]), until, str(rec.get("reason", ""))
                )

        def day_count(rec: Mapping[str, Any]) -> None:
            if date.fromisoformat(str(rec["day"])) == today:
                limiter = self.limiter(str(rec["project"]), str(rec["model"]))
                limiter.restore_day(today, max(int(rec["count"]), limiter.day_count))

        def dropped(rec: Mapping[str, Any]) -> None:
            self.drop_model(str(rec["model"]), str(rec.get("reason", "")), _ts(str(rec["at"])))

        def dropped_for_project(rec: Mapping[str, Any]) -> None:
            self.drop_for_project(
                str(rec["project"]),
                str(rec["model"]),
                str(rec.get("reason", "")),
                _ts(str(rec["at"])),
            )

        def disabled(rec: Mapping[str, Any]) -> None:
            self.disable_key(
                str(rec["key_fp"]),
                str(rec.get("project", "")),
                str(rec.get("reason", "")),
                _ts(str(rec["at"])),
            )

        for name, apply in (
            ("learned_limits", learned),
            ("exhausted", exhausted),
            ("day_counts", day_count),
            ("dropped_models", dropped),
            ("dropped_for_project", dropped_for_project),
            ("disabled_keys", disabled),
        ):
            for rec in data.get(name) or []:
                try:
                    apply(rec)
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue  # one broken record must not block the rest


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))
