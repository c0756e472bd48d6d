"""The HTTP side of the emulator (aiohttp) and :class:`GeminiEmulator` for in-process use.

Order of checks for ``generateContent``, as the real service appears to apply them:
key present → key valid/usable → model served → payload size/JSON → forced scenario
error → request content (images decode, thinking settings, input limit) → quota →
answer. Only the quota step spends quota; it also looks (without counting) before the
images are decoded, so a full quota is refused at once. Refusals come back at once (a
429 does not wait for a model); the configured latency, plus ``per_output_token``
seconds per output token, is spent on admitted answers and on forced 500/503s only.

Why one module of ~600 lines: the handlers of every endpoint share one state, one
authorization step and one way of recording and refusing a call, and that order of
checks reads as one method (``generate``); what each step does lives elsewhere
(content, quota, scenario, answer, generate, pack, errors).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from aiohttp import web

from sandbox.gemini import errors
from sandbox.gemini.answer import build_answer
from sandbox.gemini.clock import Clock
from sandbox.gemini.config import (
    KEY_STATUSES,
    EmulatorConfig,
    KeySpec,
    KeyStatus,
    ModelSpec,
    load_config,
)
from sandbox.gemini.content import (
    BadImage,
    GenerateRequest,
    ImageInfo,
    InlineImage,
    RequestInvalid,
    analyse_image,
    count_tokens_contents,
    parse_generate_request,
    text_tokens,
)
from sandbox.gemini.errors import ApiError
from sandbox.gemini.pack import PACK_FAULTS
from sandbox.gemini.quota import QuotaTracker, Rejection, RejectKind
from sandbox.gemini.requestlog import RequestRecord
from sandbox.gemini.scenario import SCENARIO_KNOBS, Outcome, Scenario, ScenarioError, key_fp
from sandbox.serving import LoopThread

API_VERSIONS = ("v1beta", "v1")
MIN_REQUIRED_BUDGET = 128  # smallest thinking budget of models that always think
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# What Google front ends send besides the body (minus alt-svc, meaningless here).
BASE_HEADERS = {
    "Vary": "Origin, X-Origin, Referer",
    "Server": "scaffolding on HTTPServer2",
    "X-XSS-Protection": "0",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
}
CONTROL_KNOBS = SCENARIO_KNOBS | {
    "deadline_seconds",
    "key_status",
    "clock_advance",
    "clock_set",
    "consume",
    "clear_log",
}
# Forced quota outcomes: which quota they name and which limit goes into the body.
_FORCED_QUOTA: dict[str, tuple[RejectKind, str]] = {
    "quota_per_minute": ("per_minute", "rpm"),
    "quota_per_day": ("per_day", "rpd"),
    "quota_input_tokens": ("input_tokens", "tpm"),
}
# Forced errors that come back after the drawn latency (the model was reached); every
# other one is answered at the front door at once, as real quota and key errors are.
_SLOW_ERRORS = frozenset({"internal", "overloaded"})
_STATUS_TO_KIND = {
    "invalid": "api_key_invalid",
    "leaked": "key_leaked",
    "location": "user_location",
    "depleted": "credits_depleted",
}


def json_response(status: int, body: Any, started: float | None = None) -> web.Response:
    """Pretty-printed JSON with the real service's content type and headers."""
    headers = dict(BASE_HEADERS)
    if started is not None:
        headers["Server-Timing"] = f"gfet4t7; dur={round((time.perf_counter() - started) * 1000)}"
    return web.Response(
        status=status,
        body=json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8"),
        headers={**headers, "Content-Type": "application/json; charset=UTF-8"},
    )


class EmulatorState:
    """Everything the handlers share; mutable parts are guarded by ``lock``."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.Lock()
        self.scenario = Scenario(config.seed)
        self.scenario.apply(config.scenario)
        self.deadline_seconds = config.deadline_seconds
        self.key_overrides: dict[str, KeyStatus] = {}
        used = {
            (p.id, model): n for p in config.projects.values() for model, n in p.used_today.items()
        }
        self.quota = QuotaTracker(used, clock.time())
        self.records: list[RequestRecord] = []
        self._ids = random.Random(config.seed ^ 0x6E6D)

    def resolve_key(self, key: str) -> KeySpec | None:
        spec = self.config.keys.get(key)
        if spec is None and self.config.accept_any_key is not None:
            spec = KeySpec(key=key, project=self.config.accept_any_key)
        override = self.key_overrides.get(key_fp(key))
        if spec is not None and override is not None:
            spec = replace(spec, status=override)
        return spec

    def response_id(self) -> str:
        with self.lock:
            raw = self._ids.getrandbits(128).to_bytes(16, "big")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")[:22]

    def log(self, record: RequestRecord) -> None:
        with self.lock:
            self.records.append(record)

    def control(self, knobs: Mapping[str, Any]) -> dict[str, Any]:
        """Apply scenario knobs (see :meth:`GeminiEmulator.control`); return the state."""
        unknown = set(knobs) - CONTROL_KNOBS
        if unknown:
            raise ScenarioError(f"unknown knobs {sorted(unknown)}; known: {sorted(CONTROL_KNOBS)}")
        with self.lock:
            self.scenario.apply(knobs)
            if "deadline_seconds" in knobs:
                self.deadline_seconds = float(knobs["deadline_seconds"])
            for key, status in (knobs.get("key_status") or {}).items():
                if status not in KEY_STATUSES:
                    raise ScenarioError(f"key status must be one of {sorted(KEY_STATUSES)}")
                self.key_overrides[key_fp(key)] = cast(KeyStatus, status)
            if "clock_advance" in knobs:
                self.clock.advance(float(knobs["clock_advance"]))
            if "clock_set" in knobs:
                when = knobs["clock_set"]
                self.clock.set(datetime.fromisoformat(when) if isinstance(when, str) else when)
            for entry in knobs.get("consume") or []:
                self.quota.consume_day(
                    entry["project"], entry["model"], int(entry["requests"]), self.clock.time()
                )
            if knobs.get("clear_log"):
                self.records.clear()
            return self.describe_locked()

    def describe_locked(self) -> dict[str, Any]:
        return {
            "clock": self.clock.now().isoformat(),
            "deadline_seconds": self.deadline_seconds,
            "scenario": self.scenario.describe(),
            "quota": self.quota.snapshot(self.clock.time()),
        }


class Handlers:
    """aiohttp handlers over one :class:`EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.config = state.config

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/{version}/models", self.list_models),
            web.route("*", "/{version}/models/{target}", self.model_call),
            web.get("/_emulator/log", self.get_log),
            web.get("/_emulator/state", self.get_state),
            web.post("/_emulator/control", self.post_control),
        ]

    # -- helpers -----------------------------------------------------------------------

    def _record(self, method: str, started: float, **fields: Any) -> None:
        self.state.log(
            RequestRecord(
                time=self.state.clock.now(),
                method=method,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                **fields,
            )
        )

    def _fail(self, method: str, started: float, error: ApiError, **fields: Any) -> web.Response:
        self._record(method, started, status=error.status, error=error.kind, **fields)
        return json_response(error.status, error.body, started)

    @staticmethod
    def _key(request: web.Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def _refuse(
        self, request: web.Request, method: str, started: float, error: ApiError, **fields: Any
    ) -> web.Response:
        """Log an authorization failure under the caller's key fingerprint (if any)."""
        key = self._key(request)
        return self._fail(method, started, error, key_fp=key_fp(key) if key else None, **fields)

    def _authorize(self, request: web.Request, method: str) -> KeySpec | ApiError:
        key = self._key(request)
        if not key:
            return errors.fixed("unregistered_caller")
        spec = self.state.resolve_key(key)
        if spec is None:
            return errors.fixed("api_key_invalid")
        if spec.status == "depleted" and method != "generateContent":
            return spec
        if spec.status != "ok":
            return errors.fixed(_STATUS_TO_KIND[spec.status])
        return spec

    def _model(self, name: str, method: str) -> ModelSpec | None:
        spec = self.config.models.get(name)
        if spec is None or spec.retired or (method != "get" and method not in spec.methods):
            return None
        return spec

    # -- models ------------------------------------------------------------------------

    async def list_models(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        version = request.match_info["version"]
        if version not in API_VERSIONS:
            raise web.HTTPNotFound()
        auth = self._authorize(request, "models.list")
        if isinstance(auth, ApiError):
            return self._refuse(request, "models.list", started, auth)
        try:
            size = int(request.query.get("pageSize", DEFAULT_PAGE_SIZE)) or DEFAULT_PAGE_SIZE
            offset = int(base64.urlsafe_b64decode(request.query.get("pageToken", "") + "==") or 0)
        except ValueError:
            error = errors.invalid_argument("Invalid page token or page size.")
            return self._fail("models.list", started, error, key_fp=key_fp(auth.key))
        size = min(max(size, 1), MAX_PAGE_SIZE)
        served = [m for m in self.config.models.values() if not m.retired]
        page = served[offset : offset + size]
        body: dict[str, Any] = {"models": [m.entry() for m in page]}
        if offset + size < len(served):
            body["nextPageToken"] = (
                base64.urlsafe_b64encode(str(offset + size).encode()).decode().rstrip("=")
            )
        self._record(
            "models.list",
            started,
            key_fp=key_fp(auth.key),
            project=auth.project,
            model=None,
            status=200,
        )
        return json_response(200, body, started)

    async def model_call(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        target = request.match_info["target"]
        name, _, action = target.partition(":")
        if version not in API_VERSIONS:
            raise web.HTTPNotFound()
        if request.method == "GET" and not action:
            return await self.get_model(request, version, name)
        if request.method == "POST" and action == "generateContent":
            return await self.generate(request, version, name)
        if request.method == "POST" and action == "countTokens":
            return await self.count_tokens(request, version, name)
        return json_response(
            404, {"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}}
        )

    async def get_model(self, request: web.Request, version: str, name: str) -> web.Response:
        started = time.perf_counter()
        auth = self._authorize(request, "models.get")
        if isinstance(auth, ApiError):
            return self._refuse(request, "models.get", started, auth, model=name)
        fields = {"key_fp": key_fp(auth.key), "project": auth.project, "model": name}
        spec = self._model(name, "get")
        if spec is None:
            error = errors.model_not_found(name, api_version=version, method="get")
            return self._fail("models.get", started, error, **fields)
        self._record("models.get", started, status=200, **fields)
        return json_response(200, spec.entry(), started)

    # -- countTokens -------------------------------------------------------------------

    async def count_tokens(self, request: web.Request, version: str, name: str) -> web.Response:
        started = time.perf_counter()
        auth = self._authorize(request, "countTokens")
        if isinstance(auth, ApiError):
            return self._refuse(request, "countTokens", started, auth, model=name)
        fields = {"key_fp": key_fp(auth.key), "project": auth.project, "model": name}
        if self._model(name, "countTokens") is None:
            error = errors.model_not_found(name, api_version=version, method="countTokens")
            return self._fail("countTokens", started, error, **fields)
        try:
            texts, inline = count_tokens_contents(await self._read_json(request))
            infos = await _analyse_all(inline)
        except RequestInvalid as exc:
            return self._fail("countTokens", started, errors.invalid_argument(str(exc)), **fields)
        except BadImage:
            return self._fail("countTokens", started, errors.fixed("bad_image"), **fields)
        text_total = sum(text_tokens(t) for t in texts)
        image_total = sum(i.tokens for i in infos)
        details = [{"modality": "TEXT", "tokenCount": text_total}]
        if image_total:
            details.append({"modality": "IMAGE", "tokenCount": image_total})
        total = text_total + image_total
        self._record(
            "countTokens", started, status=200, prompt_tokens=total, images=len(infos), **fields
        )
        return json_response(200, {"totalTokens": total, "promptTokensDetails": details}, started)

    async def _read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        if len(raw) > self.config.max_request_bytes:
            raise RequestInvalid(
                f"Request payload size exceeds the limit: {self.config.max_request_bytes} bytes."
            )
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestInvalid(
                f"Invalid JSON payload received. {type(exc).__name__} at byte "
                f"{getattr(exc, 'pos', 0)}."
            ) from exc

    # -- generateContent ---------------------------------------------------------------

    async def generate(self, request: web.Request, version: str, name: str) -> web.Response:
        started = time.perf_counter()
        method = "generateContent"
        auth = self._authorize(request, method)
        if isinstance(auth, ApiError):
            return self._refuse(request, method, started, auth, model=name)
        fields: dict[str, Any] = {
            "key_fp": key_fp(auth.key),
            "project": auth.project,
            "model": name,
        }
        if auth.status == "depleted":
            return self._fail(method, started, errors.fixed("credits_depleted"), **fields)
        model = self._model(name, method)
        if model is None:
            error = errors.model_not_found(name, api_version=version, method=method)
            return self._fail(method, started, error, **fields)
        try:
            body = await self._read_json(request)
        except RequestInvalid as exc:
            return self._fail(method, started, errors.invalid_argument(str(exc)), **fields)
        with self.state.lock:
            outcome = self.state.scenario.draw(fields["key_fp"], name, auth.project)
            latency = self.state.scenario.latency.draw(self.state.scenario.rng)
            per_token = self.state.scenario.latency.per_output_token
            deadline = self.state.deadline_seconds
        if outcome is not None and outcome.is_error:
            if outcome.kind == "deadline":
                await asyncio.sleep(deadline)
            elif outcome.kind in _SLOW_ERRORS and latency > 0:
                await asyncio.sleep(latency)
            error = self._forced_error(outcome, auth.project, name, version)
            return self._fail(method, started, error, **fields)
        try:
            parsed = parse_generate_request(body)
        except RequestInvalid as exc:
            return self._fail(method, started, errors.invalid_argument(str(exc)), **fields)
        fields["images"] = len(parsed.images)
        limits = self.config.limits(auth.project, name)
        now = self.state.clock.time()
        with self.state.lock:  # the front door: a full quota is refused before any decoding
            early = self.state.quota.admit(
                auth.project, name, limits, parsed.text_token_count, now, count=False
            )
        if early is not None:  # its images were never read: the text's tokens only
            fields["prompt_tokens"] = parsed.text_token_count
            return self._fail(
                method, started, self._quota_error(early, auth.project, name), **fields
            )
        try:
            infos = await _analyse_all(parsed.images)
        except BadImage:
            return self._fail(method, started, errors.fixed("bad_image"), **fields)
        prompt_tokens = parsed.text_token_count + sum(i.tokens for i in infos)
        fields["prompt_tokens"] = prompt_tokens
        invalid = _unservable(model, parsed, prompt_tokens)
        if invalid is not None:
            return self._fail(method, started, invalid, **fields)
        with self.state.lock:
            rejection = self.state.quota.admit(
                auth.project, name, limits, prompt_tokens, self.state.clock.time()
            )
        if rejection is not None:
            error = self._quota_error(rejection, auth.project, name)
            return self._fail(method, started, error, **fields)
        # Admitted (and counted): the answer takes the latency plus its generation time.
        # A client that gives up meanwhile has still spent the request.
        answer = build_answer(
            kind=outcome.kind if outcome is not None else "ok",
            model=model,
            request=parsed,
            images=infos,
            response_id=self.state.response_id(),
        )
        delay = latency + per_token * (answer.output_tokens + answer.thoughts_tokens)
        if delay > 0:
            await asyncio.sleep(delay)
        forced = outcome.kind if outcome is not None and outcome.kind != "ok" else None
        if forced in PACK_FAULTS:
            forced = answer.fault
        self._record(
            method,
            started,
            status=200,
            output_tokens=answer.output_tokens,
            thoughts_tokens=answer.thoughts_tokens,
            finish_reason=answer.finish_reason,
            error=forced,
            **fields,
        )
        return json_response(200, answer.body, started)

    def _quota_error(self, rejection: Rejection, project: str, model: str) -> ApiError:
        if rejection.kind == "limit_zero":
            return errors.limit_zero(model=model, retry_after=rejection.retry_after)
        return errors.quota_exceeded(
            rejection.kind,
            model=model,
            limit=rejection.limit,
            retry_after=rejection.retry_after,
            tier=self.config.tier(project),
            round_up=rejection.kind != "per_day",
        )

    def _forced_error(self, outcome: Outcome, project: str, model: str, version: str) -> ApiError:
        delay = outcome.retry_delay
        if delay is None:
            delay = 60.0 - (self.state.clock.time() % 60.0)
        if outcome.kind in _FORCED_QUOTA:
            kind, limit_name = _FORCED_QUOTA[outcome.kind]
            limit = getattr(self.config.limits(project, model), limit_name)
            return self._quota_error(Rejection(kind, limit, delay), project, model)
        if outcome.kind == "quota_limit_zero":
            return errors.limit_zero(model=model, retry_after=delay)
        if outcome.kind == "model_not_found":
            return errors.model_not_found(model, api_version=version, method="generateContent")
        return errors.fixed(outcome.kind)

    # -- emulator endpoints ------------------------------------------------------------

    async def get_log(self, request: web.Request) -> web.Response:
        with self.state.lock:
            records = [r.to_json() for r in self.state.records]
        return web.json_response({"requests": records})

    async def get_state(self, request: web.Request) -> web.Response:
        with self.state.lock:
            return web.json_response(self.state.describe_locked())

    async def post_control(self, request: web.Request) -> web.Response:
        try:
            knobs = await request.json()
            if not isinstance(knobs, Mapping):
                raise ScenarioError("the control body is a JSON object of knobs")
            return web.json_response(self.state.control(knobs))
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)


def _unservable(model: ModelSpec, request: GenerateRequest, prompt_tokens: int) -> ApiError | None:
    """The 400 for a well-formed request this model refuses, if any."""
    budget = request.thinking_budget
    if model.thinking_required and budget == 0:
        return errors.invalid_argument(
            "Budget 0 is invalid. This model only works in thinking mode."
        )
    if model.thinking_required and budget is not None and 0 < budget < MIN_REQUIRED_BUDGET:
        return errors.invalid_argument(
            f"The thinking budget {budget} is invalid. Please choose a value between "
            f"{MIN_REQUIRED_BUDGET} and 32768."
        )
    if request.thinking_level is not None and not model.thinking_levels:
        # Gemini 3 introduced thinking levels; earlier models only take a budget.
        return errors.invalid_argument("Thinking level is not supported for this model.")
    if prompt_tokens > model.input_token_limit:
        return errors.invalid_argument(
            f"The input token count ({prompt_tokens}) exceeds the maximum number of tokens "
            f"allowed ({model.input_token_limit})."
        )
    return None


async def _analyse_all(images: tuple[InlineImage, ...] | list[InlineImage]) -> list[ImageInfo]:
    """Decode images off the event loop (a big JPEG takes tens of milliseconds)."""
    if not images:
        return []
    return await asyncio.to_thread(lambda: [analyse_image(img) for img in images])


def build_app(state: EmulatorState) -> web.Application:
    app = web.Application(client_max_size=max(state.config.max_request_bytes * 2, 1 << 20))
    app.add_routes(Handlers(state).routes())
    return app


class GeminiEmulator:
    """The emulator on its own event loop in a background thread.

    ``with GeminiEmulator(config=…, port=0) as emu:`` → ``emu.base_url`` for
    ``HttpOptions(base_url=…)``, ``emu.clock``, ``emu.requests``, ``emu.control(…)``.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | str | Path | EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.config = load_config(config)
        self.clock = clock or Clock(self.config.clock_start, frozen=self.config.clock_frozen)
        self.state = EmulatorState(self.config, self.clock)
        self.host = host
        self.port = port
        self._thread = LoopThread("gemini-emulator")
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self.state.lock:
            return list(self.state.records)

    def reset_log(self) -> None:
        with self.state.lock:
            self.state.records.clear()

    def control(self, **knobs: Any) -> dict[str, Any]:
        """Change the scenario; same knobs as ``POST /_emulator/control``.

        ``latency`` (number, ``{fixed}`` or ``{min, max}``), ``rates`` ({outcome: p}),
        ``script`` (entry or list, appended), ``clear_script``, ``seed``,
        ``deadline_seconds``, ``key_status`` ({key: status}), ``clock_advance``
        (seconds), ``clock_set`` (datetime/ISO), ``consume`` ([{project, model,
        requests}]), ``clear_log``. Returns the resulting state.
        """
        return self.state.control(knobs)

    def start(self) -> Self:
        async def serve() -> None:
            runner = web.AppRunner(build_app(self.state), access_log=None, shutdown_timeout=1.0)
            self._runner = runner
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = runner.addresses[0][1]

        async def cleanup() -> None:
            runner, self._runner = self._runner, None
            if runner is not None:
                await runner.cleanup()

        self._thread.start(serve, cleanup)
        return self

    def stop(self) -> None:
        self._thread.stop(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
