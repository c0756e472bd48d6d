"""Typed configuration of the Gemini client, read once from env-like settings.

Every malformed value raises :class:`GeminiSettingsError` (a ``ValueError``) whose
message starts with the setting's name and never contains a key (fingerprints only).

Which model names the client understands (``GEMINI_MODELS`` naming none of them is an
error; unknown names next to known ones are left to ``models.list`` at start): the
generation models of the real API and the emulator's catalogue (:data:`KNOWN_MODELS`),
and any name of the shape the client's thinking rules are written for,
``gemini-<major>[.<minor>]-<variant>`` (``gemini-3.5-flash``, ``gemini-2.5-flash-preview-09-2025``),
plus ``gemma-<n>…`` and the ``gemini-*-latest`` aliases. Embedding models and other
vendors' names (``gpt-4o``, ``gemini-embedding-001``) are not generation models here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .keys import ApiKey, KeySpecError, parse_keys
from .limiter import ModelLimits

API_VERSION = "v1beta"
DEFAULT_MODELS = ("gemini-2.5-flash-lite", "gemini-2.5-flash", "gemini-3-flash-preview")
KNOWN_MODELS = frozenset(
    {
        *DEFAULT_MODELS,
        "gemini-2.5-pro",
        "gemini-3-pro-preview",
        "gemini-2.0-flash",
        "gemini-2.0-flash-lite",
        "gemini-1.5-flash",
        "gemini-1.5-flash-8b",
        "gemini-1.5-pro",
        "gemini-flash-latest",
        "gemini-flash-lite-latest",
        "gemini-pro-latest",
    }
)
_MODEL_SHAPE = re.compile(r"^(?:gemini-\d+(?:\.\d+)?|gemma-\d+(?:\.\d+)?)(?:-[a-z0-9.]+)*$")


class GeminiSettingsError(ValueError):
    """A ``GEMINI_*`` setting is malformed; ``setting`` names it, the message says how."""

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {message}")


def is_known_model(name: str) -> bool:
    """Whether the client understands ``name`` as a generation model (module docstring)."""
    name = normalize_model(name)
    return name in KNOWN_MODELS or _MODEL_SHAPE.match(name) is not None


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

    Unknown metrics and malformed numbers raise ``GeminiSettingsError`` (a typo here
    would otherwise silently disable a limit).
    """
    name = "GEMINI_LIMITS"
    limits: dict[str, ModelLimits] = {}
    for chunk in spec.split(";"):
        if not chunk.strip():
            continue
        model, sep, metrics = chunk.partition(":")
        if not sep or not model.strip():
            raise GeminiSettingsError(name, f"entry {chunk.strip()!r} is not 'model:metric=N,…'")
        values: dict[str, int] = {}
        for item in metrics.split(","):
            if not item.strip():
                continue
            metric, eq, number = item.partition("=")
            metric = metric.strip().lower()
            if not eq or metric not in ("rpm", "tpm", "rpd"):
                raise GeminiSettingsError(
                    name, f"unknown metric in {item.strip()!r} (rpm, tpm, rpd)"
                )
            try:
                values[metric] = int(number.strip())
            except ValueError:
                raise GeminiSettingsError(name, f"{item.strip()!r} is not a whole number") from None
            if values[metric] < 0:
                raise GeminiSettingsError(name, f"negative limit in {item.strip()!r}")
        limits[normalize_model(model)] = ModelLimits(**values)
    return limits


def parse_model_setting(spec: str) -> tuple[str, ...]:
    """``GEMINI_MODELS`` (empty: the defaults); naming only unknown models is an error."""
    models = parse_models(spec)
    if not models:
        return DEFAULT_MODELS
    if not any(is_known_model(m) for m in models):
        raise GeminiSettingsError(
            "GEMINI_MODELS",
            f"none of {', '.join(models)} is a Gemini generation model this client knows "
            f"(e.g. {', '.join(DEFAULT_MODELS)})",
        )
    return models


def _raw(mapping: Mapping[str, Any], name: str) -> Any:
    """The value of ``name``, or ``None`` when it is absent or empty (then the default holds)."""
    value = mapping.get(name)
    return None if value is None or value == "" else value


def _text(mapping: Mapping[str, Any], name: str) -> str:
    value = _raw(mapping, name)
    return "" if value is None else str(value)


def _float(mapping: Mapping[str, Any], name: str, default: float, minimum: float) -> float:
    raw = _raw(mapping, name)
    try:
        value = default if raw is None else float(raw)
    except (TypeError, ValueError):
        raise GeminiSettingsError(name, f"must be a number, got {str(raw)[:40]!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise GeminiSettingsError(name, f"must be a finite number >= {minimum:g}, got {value!r}")
    return value


def _int(mapping: Mapping[str, Any], name: str, default: int, minimum: float) -> int:
    raw = _raw(mapping, name)
    try:
        value = default if raw is None else int(raw)
    except (TypeError, ValueError):
        raise GeminiSettingsError(name, f"must be a whole number, got {str(raw)[:40]!r}") from None
    if value < minimum:
        raise GeminiSettingsError(name, f"must be >= {minimum:g}, got {value!r}")
    return value


def _keys(mapping: Mapping[str, Any]) -> tuple[ApiKey, ...]:
    try:
        return parse_keys(_text(mapping, "GEMINI_API_KEYS"), _text(mapping, "GEMINI_API_KEY"))
    except KeySpecError as exc:
        raise GeminiSettingsError(exc.setting, exc.detail) from None


# The numeric settings: (name, field, lowest value). Their defaults are the dataclass's
# field defaults below, the only ones in pipelines/ (crawler/settings.py declares the
# same values for a crawl; tests/gemini_client/test_keys_settings.py checks they agree).
NUMERIC_SETTINGS: tuple[tuple[str, str, float], ...] = (
    ("GEMINI_MAX_IN_FLIGHT", "max_in_flight", 1),
    ("GEMINI_TIMEOUT", "request_timeout", 0),
    ("GEMINI_MAX_RETRY_DELAY", "max_retry_delay", 0),
    ("GEMINI_MAX_WAIT", "max_wait", 0),
    ("GEMINI_BACKOFF_BASE", "backoff_base", 0),
    ("GEMINI_BACKOFF_MAX", "backoff_max", 0),
    ("GEMINI_JITTER", "jitter", 0),
    ("GEMINI_SERVER_RETRIES", "server_retries", 0),
    ("GEMINI_TIMEOUT_RETRY_FACTOR", "timeout_retry_factor", 1),
    ("GEMINI_UNKNOWN_RPM_SPACING", "unknown_rpm_spacing", 0),
    ("GEMINI_MAX_ATTEMPTS", "max_attempts", 1),
    ("GEMINI_MAX_OUTPUT_TOKENS", "max_output_tokens", 1),
    ("GEMINI_SERVER_ERROR_DEFER", "server_error_defer", 0),
)


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
    server_retries: int = 2  # retries of one model after 5xx/connection errors, then the next
    timeout_retry_factor: float = 2.0  # after a timeout: one retry with this times the timeout
    unknown_rpm_spacing: float = 0.05  # seconds between requests while a pair's RPM is unknown
    max_attempts: int = 12  # requests one generate() call may send in total
    max_output_tokens: int = 8192
    server_error_defer: float = 600.0  # when every model fails with 5xx: defer this long

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise GeminiSettingsError("GEMINI_MAX_IN_FLIGHT", "must be >= 1")
        if self.max_attempts < 1:
            raise GeminiSettingsError("GEMINI_MAX_ATTEMPTS", "must be >= 1")
        if self.timeout_retry_factor < 1:
            raise GeminiSettingsError("GEMINI_TIMEOUT_RETRY_FACTOR", "must be >= 1")

    def __repr__(self) -> str:  # keys show as fingerprints through ApiKey's repr
        return (
            f"GeminiSettings(keys={list(map(str, self.keys))}, models={list(self.models)}, "
            f"base_url={self.base_url!r}, max_in_flight={self.max_in_flight})"
        )

    @classmethod
    def from_env_like(cls, mapping: Mapping[str, Any]) -> GeminiSettings:
        """Read ``GEMINI_*`` names from ``os.environ``, a dict or Scrapy ``Settings``.

        An absent or empty name keeps the field's default (a Scrapy crawl's settings carry
        crawler/settings.py's declared values, which are the same).
        """
        declared = {f.name: f for f in fields(cls)}
        numbers: dict[str, Any] = {}
        for name, attr, minimum in NUMERIC_SETTINGS:
            read = _int if declared[attr].type == "int" else _float
            numbers[attr] = read(mapping, name, declared[attr].default, minimum)
        return cls(
            keys=_keys(mapping),
            models=parse_model_setting(_text(mapping, "GEMINI_MODELS")),
            base_url=_text(mapping, "GEMINI_BASE_URL").strip() or None,
            limits=parse_limits(_text(mapping, "GEMINI_LIMITS")),
            **numbers,
        )
