"""Emulator configuration: projects, keys, models, limits and the scenario.

A configuration is a TOML file or the equivalent dict::

    seed = 7                         # random draws (error rates, uniform latency)
    accept_any_key = false           # or a project id: unknown keys join that project
    deadline_seconds = 2.0           # how long a 504 takes to come back
    max_request_bytes = 20971520

    [clock]                          # optional start point of the injectable clock
    start = "2026-11-29T23:59:00-08:00"
    frozen = true

    [default_limits]                 # every (project, model) unless overridden
    rpm = 100000                     # (the defaults: practically unlimited)
    tpm = 1000000000
    rpd = 10000000

    [projects.alpha]
    tier = "free"                    # free | paid (quota ids and metrics differ)
    keys = ["key-a1", "key-a2", {key = "key-a3", status = "leaked"}]
    [projects.alpha.limits."gemini-2.5-flash"]
    rpd = 20
    rpm = 5
    used_today = 20                  # the day's quota is already spent at start

    [models."gemini-2.5-flash"]      # merged over the built-in catalogue entry
    retired = false
    [models."gemini-9-experimental"] # a new entry
    display_name = "Gemini 9"

    [latency]                        # fixed = 0.2, or min/max for a uniform draw
    min = 0.0
    max = 0.05

    [rates]                          # probability per outcome (see scenario.OUTCOMES)
    "503" = 0.05

    [[script]]                       # the next matching calls get these outcomes
    key = "key-a1"                   # optional; also model = …, project = …
    times = 3
    outcome = "503"

Key statuses: ``ok``, ``invalid`` (400 API_KEY_INVALID), ``leaked`` (403),
``location`` (400 FAILED_PRECONDITION), ``depleted`` (402). Without any configuration
every key is accepted into one project with generous limits.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sandbox.gemini.scenario import Scenario, ScenarioError

KeyStatus = Literal["ok", "invalid", "leaked", "location", "depleted"]
KEY_STATUSES: frozenset[str] = frozenset({"ok", "invalid", "leaked", "location", "depleted"})
Tier = Literal["free", "paid"]

DEFAULT_PROJECT = "emulator-project"
GENERATE_METHODS = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
EMBED_METHODS = ("embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent")


class ConfigError(ValueError):
    """The configuration is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class Limits:
    """Requests per minute, input tokens per minute, requests per day; 0 means no quota."""

    rpm: int
    tpm: int
    rpd: int


# Without configuration nothing should run out in a test or a demo run.
GENEROUS_LIMITS = Limits(rpm=100_000, tpm=1_000_000_000, rpd=10_000_000)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the catalogue, as ``models.list`` shows it."""

    name: str
    display_name: str
    description: str
    version: str = "001"
    input_token_limit: int = 1_048_576
    output_token_limit: int = 65_536
    methods: tuple[str, ...] = GENERATE_METHODS
    thinking: bool = True
    thinks_by_default: bool = True
    thinking_required: bool = False
    thinking_levels: bool = False
    retired: bool = False
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 64
    max_temperature: float = 2.0

    def entry(self) -> dict[str, Any]:
        """The camelCase ``Model`` resource (shape of a real ``models.list`` entry)."""
        body: dict[str, Any] = {
            "name": f"models/{self.name}",
            "version": self.version,
            "displayName": self.display_name,
            "description": self.description,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": list(self.methods),
        }
        if "generateContent" in self.methods:
            body.update(
                temperature=_number(self.temperature),
                topP=_number(self.top_p),
                topK=self.top_k,
                maxTemperature=_number(self.max_temperature),
                thinking=self.thinking,
            )
        return body


def _number(value: float) -> float | int:
    """Whole numbers as the service writes them (``1``, not ``1.0``)."""
    return int(value) if float(value).is_integer() else value


def _gen(name: str, display: str, description: str, **kw: Any) -> ModelSpec:
    return ModelSpec(name=name, display_name=display, description=description, **kw)


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    _gen(
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        "Stable version of Gemini 2.5 Flash, our mid-size multimodal model that supports up "
        "to 1 million tokens, released in June of 2025.",
    ),
    _gen(
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        "Stable version of Gemini 2.5 Flash-Lite, released in July of 2025",
        thinks_by_default=False,
    ),
    _gen(
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        "Stable release (June 17th, 2025) of Gemini 2.5 Pro",
        version="2.5",
        thinking_required=True,
    ),
    _gen(
        "gemini-3-flash-preview",
        "Gemini 3 Flash Preview",
        "Gemini 3 Flash Preview",
        version="3-flash-preview-12-2025",
        thinking_levels=True,
    ),
    _gen(
        "gemini-3-pro-preview",
        "Gemini 3 Pro Preview",
        "Gemini 3 Pro Preview",
        version="3-pro-preview-11-2025",
        thinking_required=True,
        thinking_levels=True,
    ),
    ModelSpec(
        name="gemini-embedding-001",
        display_name="Gemini Embedding 001",
        description="Obtain a distributed representation of a text.",
        input_token_limit=2048,
        output_token_limit=1,
        methods=EMBED_METHODS,
        thinking=False,
        thinks_by_default=False,
    ),
    *(
        _gen(name, display, "Retired model.", retired=True, thinking=False)
        for name, display in (
            ("gemini-1.5-flash", "Gemini 1.5 Flash"),
            ("gemini-1.5-flash-8b", "Gemini 1.5 Flash-8B"),
            ("gemini-1.5-pro", "Gemini 1.5 Pro"),
            ("gemini-2.0-flash", "Gemini 2.0 Flash"),
            ("gemini-2.0-flash-lite", "Gemini 2.0 Flash-Lite"),
        )
    ),
)


@dataclass(frozen=True)
class KeySpec:
    key: str
    project: str
    status: KeyStatus = "ok"


@dataclass(frozen=True)
class ProjectSpec:
    """A Google Cloud project: quota is counted per (project, model), shared by its keys."""

    id: str
    tier: Tier = "free"
    default_limits: Mapping[str, int] = field(default_factory=dict)
    model_limits: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    used_today: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EmulatorConfig:
    """Parsed configuration; build it with :func:`load_config`."""

    projects: Mapping[str, ProjectSpec]
    keys: Mapping[str, KeySpec]
    models: Mapping[str, ModelSpec]
    default_limits: Limits = GENEROUS_LIMITS
    accept_any_key: str | None = None
    seed: int = 0
    deadline_seconds: float = 5.0
    max_request_bytes: int = 20 * 1024 * 1024
    clock_start: datetime | None = None
    clock_frozen: bool = False
    scenario: Mapping[str, Any] = field(default_factory=dict)

    def limits(self, project: str, model: str) -> Limits:
        """Effective limits: project+model entry, then project default, then global."""
        spec = self.projects.get(project)
        merged = {
            "rpm": self.default_limits.rpm,
            "tpm": self.default_limits.tpm,
            "rpd": self.default_limits.rpd,
        }
        if spec is not None:
            merged.update(spec.default_limits)
            merged.update(
                {k: v for k, v in spec.model_limits.get(model, {}).items() if k in merged}
            )
        return Limits(**merged)

    def tier(self, project: str) -> Tier:
        spec = self.projects.get(project)
        return spec.tier if spec is not None else "free"


SCENARIO_FIELDS = ("latency", "rates", "script")


def load_config(source: Mapping[str, Any] | str | Path | EmulatorConfig | None) -> EmulatorConfig:
    """Build a configuration from a dict, a TOML path, an existing config or nothing."""
    if isinstance(source, EmulatorConfig):
        return source
    if source is None:
        raw: Mapping[str, Any] = {"accept_any_key": DEFAULT_PROJECT}
    elif isinstance(source, str | Path):
        with Path(source).open("rb") as fh:
            raw = tomllib.load(fh)
    else:
        raw = source
    return _parse(raw)


def _int_table(raw: Any, where: str, allowed: frozenset[str]) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    out: dict[str, int] = {}
    for name, value in raw.items():
        if name not in allowed:
            raise ConfigError(f"{where}: unknown field {name!r} (allowed: {sorted(allowed)})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{where}.{name} must be a non-negative integer")
        out[name] = value
    return out


_LIMIT_FIELDS = frozenset({"rpm", "tpm", "rpd"})


def _parse_project(
    pid: str, raw: Any, keys: dict[str, KeySpec]
) -> tuple[ProjectSpec, dict[str, KeySpec]]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"projects.{pid} must be a table")
    tier = raw.get("tier", "free")
    if tier not in ("free", "paid"):
        raise ConfigError(f"projects.{pid}.tier must be 'free' or 'paid'")
    model_limits: dict[str, dict[str, int]] = {}
    used: dict[str, int] = {}
    for model, table in (raw.get("limits") or {}).items():
        values = _int_table(table, f"projects.{pid}.limits.{model}", _LIMIT_FIELDS | {"used_today"})
        if "used_today" in values:
            used[model] = values.pop("used_today")
        model_limits[model] = values
    defaults = _int_table(
        raw.get("default_limits", {}), f"projects.{pid}.default_limits", _LIMIT_FIELDS
    )
    for entry in raw.get("keys", []):
        if isinstance(entry, str):
            spec = KeySpec(key=entry, project=pid)
        elif isinstance(entry, Mapping) and isinstance(entry.get("key"), str):
            status = entry.get("status", "ok")
            if status not in KEY_STATUSES:
                raise ConfigError(
                    f"projects.{pid}: key status {status!r} not in {sorted(KEY_STATUSES)}"
                )
            spec = KeySpec(key=entry["key"], project=pid, status=status)
        else:
            raise ConfigError(f"projects.{pid}.keys: entries are strings or {{key=…, status=…}}")
        if spec.key in keys:
            raise ConfigError(f"projects.{pid}: a key appears twice in the configuration")
        keys[spec.key] = spec
    project = ProjectSpec(
        id=pid, tier=tier, default_limits=defaults, model_limits=model_limits, used_today=used
    )
    return project, keys


_MODEL_FIELDS = {
    "display_name": str,
    "description": str,
    "version": str,
    "input_token_limit": int,
    "output_token_limit": int,
    "methods": list,
    "thinking": bool,
    "thinks_by_default": bool,
    "thinking_required": bool,
    "thinking_levels": bool,
    "retired": bool,
}


def _parse_models(raw: Any) -> dict[str, ModelSpec]:
    models = {m.name: m for m in DEFAULT_MODELS}
    if raw is None:
        return models
    if not isinstance(raw, Mapping):
        raise ConfigError("models must be a table of model tables")
    for name, table in raw.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"models.{name} must be a table")
        changes: dict[str, Any] = {}
        for fname, value in table.items():
            kind = _MODEL_FIELDS.get(fname)
            if kind is None or not isinstance(value, kind):
                raise ConfigError(f"models.{name}.{fname}: unknown field or wrong type")
            changes[fname] = tuple(value) if fname == "methods" else value
        base = models.get(name) or ModelSpec(name=name, display_name=name, description=name)
        models[name] = replace(base, **changes)
    return models


def _parse(raw: Mapping[str, Any]) -> EmulatorConfig:
    keys: dict[str, KeySpec] = {}
    projects: dict[str, ProjectSpec] = {}
    for pid, table in (raw.get("projects") or {}).items():
        projects[pid], keys = _parse_project(pid, table, keys)
    accept_any = raw.get("accept_any_key", False)
    if accept_any is True:
        accept_any = DEFAULT_PROJECT
    if accept_any is False:
        accept_any = None
    if accept_any is not None and not isinstance(accept_any, str):
        raise ConfigError("accept_any_key must be false, true or a project id")
    if accept_any is not None and accept_any not in projects:
        projects[accept_any] = ProjectSpec(id=accept_any)
    defaults = _int_table(raw.get("default_limits", {}), "default_limits", _LIMIT_FIELDS)
    clock = raw.get("clock") or {}
    start = clock.get("start")
    if isinstance(start, str):
        start = datetime.fromisoformat(start)
    if start is not None and not isinstance(start, datetime):
        raise ConfigError("clock.start must be an ISO date-time")
    scenario = {k: raw[k] for k in SCENARIO_FIELDS if k in raw}
    try:
        Scenario(0).apply(scenario)
    except (ScenarioError, ValueError, TypeError) as exc:
        raise ConfigError(f"scenario: {exc}") from exc
    return EmulatorConfig(
        projects=projects,
        keys=keys,
        models=_parse_models(raw.get("models")),
        default_limits=replace(GENEROUS_LIMITS, **defaults),
        accept_any_key=accept_any,
        seed=int(raw.get("seed", 0)),
        deadline_seconds=float(raw.get("deadline_seconds", 5.0)),
        max_request_bytes=int(raw.get("max_request_bytes", 20 * 1024 * 1024)),
        clock_start=start,
        clock_frozen=bool(clock.get("frozen", False)),
        scenario=scenario,
    )
