"""Scenario knobs: latency, random outcome rates and scripted outcome sequences.

An *outcome* replaces the normal handling of one ``generateContent`` call. Error outcomes
answer before the quota is looked at and spend none of it; content outcomes (SAFETY,
MAX_TOKENS …) are normal 200 answers that count against the quota like any other.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Error outcomes (kind names of the request log) and their status-code aliases.
ERROR_OUTCOMES = frozenset(
    {
        "internal",
        "overloaded",
        "deadline",
        "quota_bare",
        "quota_per_minute",
        "quota_per_day",
        "quota_input_tokens",
        "quota_limit_zero",
        "credits_depleted",
        "api_key_invalid",
        "user_location",
        "bad_image",
        "key_leaked",
        "unregistered_caller",
        "model_not_found",
    }
)
CONTENT_OUTCOMES = frozenset(
    {
        "ok",
        "safety",
        "prompt_blocked",
        "recitation",
        "max_tokens",
        "invalid_json",
        "empty_candidates",
        "empty_content",
        # Faults of a packed answer (see sandbox.gemini.pack); plain answers are unaffected.
        "pack_drop",
        "pack_duplicate",
        "pack_swap",
        "pack_unknown",
    }
)
ALIASES = {
    "500": "internal",
    "503": "overloaded",
    "504": "deadline",
    "429": "quota_bare",
    "429_minute": "quota_per_minute",
    "429_day": "quota_per_day",
    "429_tokens": "quota_input_tokens",
    "429_limit_zero": "quota_limit_zero",
    "402": "credits_depleted",
    "403": "key_leaked",
    "404": "model_not_found",
}
OUTCOMES = ERROR_OUTCOMES | CONTENT_OUTCOMES


class ScenarioError(ValueError):
    """A knob value is malformed; the message names it."""


@dataclass(frozen=True)
class Outcome:
    """One forced outcome; ``retry_delay`` overrides the computed delay of a 429."""

    kind: str
    retry_delay: float | None = None

    @property
    def is_error(self) -> bool:
        return self.kind in ERROR_OUTCOMES


def parse_outcome(raw: Any) -> Outcome:
    """``"503"``, ``"safety"`` or ``{"outcome": "429_minute", "retry_delay": 2}``."""
    delay: float | None = None
    if isinstance(raw, Mapping):
        delay_raw = raw.get("retry_delay")
        if isinstance(delay_raw, str):
            delay_raw = delay_raw.removesuffix("s")
        delay = float(delay_raw) if delay_raw is not None else None
        raw = raw.get("outcome")
    name = ALIASES.get(str(raw), str(raw))
    if name not in OUTCOMES:
        raise ScenarioError(f"unknown outcome {raw!r}; known: {sorted(OUTCOMES | set(ALIASES))}")
    return Outcome(name, delay)


def key_fp(key: str) -> str:
    """Fingerprint of a key, the only form in which the emulator logs or keeps one.

    Same form as the project's client (``k:`` + 8 hex of SHA-256) so logs line up.
    """
    return "k:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


@dataclass
class ScriptRule:
    """The next calls matching (key, model, project) get these outcomes, in order."""

    key_fp: str | None
    model: str | None
    project: str | None
    pending: deque[Outcome] = field(default_factory=deque)

    def matches(self, fp: str, model: str, project: str) -> bool:
        return (
            (self.key_fp is None or self.key_fp == fp)
            and (self.model is None or self.model == model)
            and (self.project is None or self.project == project)
        )


def parse_script(raw: Any) -> ScriptRule:
    """``{key|key_fp, model, project, times, outcome, retry_delay}`` or ``{…, sequence: […]}``."""
    if not isinstance(raw, Mapping):
        raise ScenarioError("a script entry is a table")
    if "sequence" in raw:
        outcomes = [parse_outcome(o) for o in raw["sequence"]]
    else:
        times = int(raw.get("times", 1))
        outcomes = [parse_outcome(raw)] * times
    fp = raw.get("key_fp") or (key_fp(raw["key"]) if raw.get("key") else None)
    return ScriptRule(
        key_fp=fp, model=raw.get("model"), project=raw.get("project"), pending=deque(outcomes)
    )


@dataclass(frozen=True)
class Latency:
    """Added before every answer: fixed, or drawn uniformly from [low, high] seconds, plus
    ``per_output_token`` seconds for every output token (answer and thinking) generated."""

    low: float = 0.0
    high: float = 0.0
    per_output_token: float = 0.0

    def draw(self, rng: random.Random) -> float:
        return self.low if self.high <= self.low else rng.uniform(self.low, self.high)


def parse_latency(raw: Any) -> Latency:
    """``0.2``, ``{fixed = s}`` or ``{min = s, max = s}``, each table with an optional
    ``per_output_token = s``."""
    if isinstance(raw, int | float):
        return Latency(float(raw), float(raw))
    if isinstance(raw, Mapping):
        per_token = float(raw.get("per_output_token", 0.0))
        if per_token < 0:
            raise ScenarioError("latency.per_output_token must be >= 0 seconds")
        if "fixed" in raw:
            return Latency(float(raw["fixed"]), float(raw["fixed"]), per_token)
        low = float(raw.get("min", 0.0))
        return Latency(low, float(raw.get("max", low)), per_token)
    raise ScenarioError(
        "latency is a number, {fixed = s} or {min = s, max = s} (+ per_output_token = s)"
    )


def parse_rates(raw: Any) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise ScenarioError("rates is a table of outcome = probability")
    rates = {parse_outcome(name).kind: float(p) for name, p in raw.items()}
    if any(p < 0 for p in rates.values()) or sum(rates.values()) > 1:
        raise ScenarioError("rates must be non-negative and sum to at most 1")
    return rates


SCENARIO_KNOBS = frozenset({"latency", "rates", "script", "clear_script", "seed"})


class Scenario:
    """Mutable knobs; not thread-safe (the caller holds the state lock)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.latency = Latency()
        self.rates: dict[str, float] = {}
        self.scripts: list[ScriptRule] = []

    def apply(self, knobs: Mapping[str, Any]) -> None:
        """Apply ``latency``, ``rates``, ``script`` (appended), ``clear_script``, ``seed``."""
        if knobs.get("clear_script"):
            self.scripts.clear()
        if "seed" in knobs:
            self.rng.seed(int(knobs["seed"]))
        if "latency" in knobs:
            self.latency = parse_latency(knobs["latency"])
        if "rates" in knobs:
            self.rates = parse_rates(knobs["rates"])
        script = knobs.get("script")
        if script is not None:
            entries = [script] if isinstance(script, Mapping) else list(script)
            self.scripts.extend(parse_script(entry) for entry in entries)

    def draw(self, fp: str, model: str, project: str) -> Outcome | None:
        """The forced outcome of this call: a script's next step, else a random draw."""
        for rule in self.scripts:
            if rule.pending and rule.matches(fp, model, project):
                outcome = rule.pending.popleft()
                if not rule.pending:
                    self.scripts.remove(rule)
                return outcome
        if self.rates:
            roll = self.rng.random()
            for kind, probability in self.rates.items():
                if roll < probability:
                    return Outcome(kind)
                roll -= probability
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "latency": {
                "min": self.latency.low,
                "max": self.latency.high,
                "per_output_token": self.latency.per_output_token,
            },
            "rates": dict(self.rates),
            "script": [
                {
                    "key_fp": r.key_fp,
                    "model": r.model,
                    "project": r.project,
                    "pending": [o.kind for o in r.pending],
                }
                for r in self.scripts
            ],
        }
