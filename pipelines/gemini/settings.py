"""Typed configuration of the Gemini client, read once from env-like settings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .keys import ApiKey, parse_keys
from .limiter import ModelLimits

API_VERSION = "v1beta"
DEFAULT_MODELS = ("gemini-2.5-flash-lite", "gemini-2.5-flash", "gemini-3-flash-preview")


def normalize_model(name: str) -> str:
    """``models/gemini-x`` and ``gemini-x`` name the same model."""
    name = name.strip()
    return name.removeprefix("models/")


def parse_models(spec: str) -> tuple[str, ...]:
    """Comma-separated preference list, order kept, duplicates and blanks dropped."""
    models: list[str] = []
    for raw in spec.split(","):
        name = normalize_model(raw)
        if name and name not in models:
            models.append(name)
    return tuple(models)


def parse_limits(spec: str) -> dict[str, ModelLimits]:
    """``GEMINI_LIMITS``: ``model:rpm=15,tpm=250000,rpd=20;other:rpd=100``.

    Unknown metrics and malformed numbers raise ``ValueError`` (a typo here would
    otherwise silently disable a limit).
    """
    limits: dict[str, ModelLimits] = {}
    for chunk in spec.split(";"):
        if not chunk.strip():
            continue
        model, sep, metrics = chunk.partition(":")
        if not sep or not model.strip():
            raise ValueError(f"GEMINI_LIMITS entry {chunk.strip()!r} is not 'model:metric=N,…'")
        values: dict[str, int] = {}
        for item in metrics.split(","):
            if not item.strip():
                continue
            metric, eq, number = item.partition("=")
            metric = metric.strip().lower()
            if not eq or metric not in ("rpm", "tpm", "rpd"):
                raise ValueError(
                    f"GEMINI_LIMITS: unknown metric in {item.strip()!r} (rpm, tpm, rpd)"
                )
            values[metric] = int(number.strip())
            if values[metric] < 0:
                raise ValueError(f"GEMINI_LIMITS: negative limit in {item.strip()!r}")
        limits[normalize_model(model)] = ModelLimits(**values)
    return limits


def _get(mapping: Mapping[str, Any], name: str, default: Any) -> Any:
    value = mapping.get(name)
    return default if value is None or value == "" else value


def _float(mapping: Mapping[str, Any], name: str, default: float) -> float:
    value = float(_get(mapping, name, default))
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _int(mapping: Mapping[str, Any], name: str, default: int, minimum: int = 0) -> int:
    value = int(_get(mapping, name, default))
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class GeminiSettings:
    """Everything the client needs; build it with ``from_env_like`` from env or Scrapy settings.

    Times are seconds. ``limits`` are per model and apply to each project separately
    (quota is per project); 429 answers can only lower them.
    """

    keys: tuple[ApiKey, ...] = ()
    models: tuple[str, ...] = DEFAULT_MODELS
    base_url: str | None = None
    api_version: str = API_VERSION
    max_in_flight: int = 4
    request_timeout: float = 120.0
    limits: Mapping[str, ModelLimits] = field(default_factory=dict)
    max_retry_delay: float = 60.0  # cap on one per-minute 429 wait
    max_wait: float = 90.0  # cap on the total waiting of one generate() call
    backoff_base: float = 1.0  # first backoff step; doubles per attempt
    backoff_max: float = 30.0
    jitter: float = 0.1  # waits are stretched by up to this fraction, never shortened
    server_retries: int = 2  # retries of one model after 5xx/timeouts before the next model
    max_attempts: int = 12  # requests one generate() call may send in total
    max_output_tokens: int = 8192
    server_error_defer: float = 600.0  # when every model fails with 5xx: defer this long

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("GEMINI_MAX_IN_FLIGHT must be >= 1")
        if self.max_attempts < 1:
            raise ValueError("GEMINI_MAX_ATTEMPTS must be >= 1")

    def __repr__(self) -> str:  # keys show as fingerprints through ApiKey's repr
        return (
            f"GeminiSettings(keys={list(map(str, self.keys))}, models={list(self.models)}, "
            f"base_url={self.base_url!r}, max_in_flight={self.max_in_flight})"
        )

    @classmethod
    def from_env_like(cls, mapping: Mapping[str, Any]) -> GeminiSettings:
        """Read ``GEMINI_*`` names from ``os.environ``, a dict or Scrapy ``Settings``."""
        models = parse_models(str(_get(mapping, "GEMINI_MODELS", ""))) or DEFAULT_MODELS
        base_url = str(_get(mapping, "GEMINI_BASE_URL", "")).strip() or None
        return cls(
            keys=parse_keys(
                str(_get(mapping, "GEMINI_API_KEYS", "")), str(_get(mapping, "GEMINI_API_KEY", ""))
            ),
            models=models,
            base_url=base_url,
            max_in_flight=_int(mapping, "GEMINI_MAX_IN_FLIGHT", 4, minimum=1),
            request_timeout=_float(mapping, "GEMINI_TIMEOUT", 120.0),
            limits=parse_limits(str(_get(mapping, "GEMINI_LIMITS", ""))),
            max_retry_delay=_float(mapping, "GEMINI_MAX_RETRY_DELAY", 60.0),
            max_wait=_float(mapping, "GEMINI_MAX_WAIT", 90.0),
            backoff_base=_float(mapping, "GEMINI_BACKOFF_BASE", 1.0),
            backoff_max=_float(mapping, "GEMINI_BACKOFF_MAX", 30.0),
            jitter=_float(mapping, "GEMINI_JITTER", 0.1),
            server_retries=_int(mapping, "GEMINI_SERVER_RETRIES", 2),
            max_attempts=_int(mapping, "GEMINI_MAX_ATTEMPTS", 12, minimum=1),
            max_output_tokens=_int(mapping, "GEMINI_MAX_OUTPUT_TOKENS", 8192, minimum=1),
            server_error_defer=_float(mapping, "GEMINI_SERVER_ERROR_DEFER", 600.0),
        )
