"""Quota-aware async Gemini client on the official google-genai SDK.

One SDK client per key (``api_version`` pinned to v1beta), a bounded number of requests
in flight, a model preference list filtered by ``models.list`` at start, routing over
(model, project) pairs with a client-side limiter, and every failure classified
(``errors.classify``) and acted on: per-minute 429 → wait and retry, per-day 429 → the
pair is out until Pacific midnight, bad key → disabled, retired model → dropped, and
so on. When nothing can serve within the wait bound the call raises ``QuotaDeferred``
so the caller can store the item as deferred instead of blocking the crawl.

Slow start: a (project, model) that has not answered successfully in this run and this
Pacific day gets one request at a time, so a run started against an exhausted or
saturated project spends one 429, not ``max_in_flight`` of them; after its first
success the configured and learned limits apply (and, while its RPM is still unknown,
the limiter's spacing, so that an unknown limit costs about one 429, not a burst).

Spend: every request sent counts (``stats["requests"]``, ``Generation.usage["requests"]``,
``GeminiError.requests_spent``), a timed-out one too, since the server finishes and bills
it. A timeout is retried once, on the same model, with ``timeout_retry_factor`` times the
timeout; a second one raises ``RequestTimedOut`` (no fan-out over the other models). An
answer without candidates is retried once, then raises ``EmptyAnswer``.

(Over 400 lines: routing, sending and the reactions to each failure kind all work on
one call's state and the shared quota book; split apart they would pass both around.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NoReturn

from google import genai
from google.genai import types

from .errors import (
    BadInput,
    ContentBlocked,
    EmptyAnswer,
    EnrichmentUnavailable,
    Failure,
    FailureKind,
    GeminiError,
    QuotaDeferred,
    RequestTimedOut,
    TruncatedOutput,
    blocking_finish_reason,
    classify_exception,
)
from .keys import ApiKey, redact
from .limiter import (
    ModelLimits,
    RateLimiter,
    estimate_tokens,
    next_pacific_midnight,
    pacific_day,
)
from .settings import GeminiSettings, normalize_model
from .state import (
    MemoryStateStore,
    MinuteWindow,
    Pair,
    QuotaLedger,
    QuotaState,
    QuotaStateStore,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Schema = type | dict[str, Any]

_MODEL_VERSION = re.compile(r"^gemini-(\d+)(?:\.(\d+))?")
_MODELS_PAGE_SIZE = 100


@dataclass(frozen=True)
class Generation:
    """One successful structured answer.

    ``usage``: ``prompt_tokens``, ``output_tokens`` (answer + thinking, both billed as
    output), ``total_tokens`` and ``requests`` (requests this call sent, retries, 429s
    and timed-out ones included).
    """

    parsed: Any
    text: str
    model: str
    project: str
    key_fp: str
    usage: dict[str, int]
    finish_reason: str


def thinking_config_for(model: str, thinking: bool) -> types.ThinkingConfig | None:
    """Thinking settings a model accepts.

    2.5 models take a budget (0 = off; 2.5 Pro cannot switch thinking off, 128 is its
    minimum), Gemini 3 takes a level, 1.x/2.0 and unversioned aliases reject the field.
    With ``thinking=True`` the model's own default is used.
    """
    match = _MODEL_VERSION.match(model)
    if thinking or match is None:
        return None
    version = (int(match.group(1)), int(match.group(2) or 0))
    if version >= (3, 0):
        return types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)
    if version == (2, 5):
        return types.ThinkingConfig(thinking_budget=128 if "-pro" in model else 0)
    return None


def generation_config(
    model: str,
    schema: Schema,
    *,
    thinking: bool,
    max_output_tokens: int,
    timeout: float | None = None,
) -> types.GenerateContentConfig:
    """JSON-mode request config for ``model``; ``timeout`` (seconds) overrides the client's."""
    return types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=schema,
        max_output_tokens=max_output_tokens,
        thinking_config=thinking_config_for(model, thinking),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        http_options=None if timeout is None else types.HttpOptions(timeout=int(timeout * 1000)),
    )


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class _Pick:
    model: str
    project: str
    key: ApiKey
    limiter: RateLimiter


@dataclass
class _CallState:
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


class GeminiClient:
    """See the module docstring. ``stats`` is a plain Counter the Scrapy side copies.

    Stats keys: ``requests``, ``requests/<model>``, ``requests_by_key/<key_fp>``,
    ``429/<per_minute|per_day|limit_zero>``, ``errors/<kind>``, ``tokens_in``,
    ``tokens_out``, ``retries``, ``waits``, ``wait_seconds``, ``deferred/<reason>``,
    ``blocked/<reason>``, ``truncated/<reason>``, ``timeouts``, ``empty_answers``.
    """

    def __init__(
        self,
        settings: GeminiSettings,
        state_store: QuotaStateStore | None = None,
        *,
        ledger: QuotaLedger | None = None,
        window: MinuteWindow | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.stats: Counter[str] = Counter()
        self.state = QuotaState(settings.limits, settings.unknown_rpm_spacing)
        self._store: QuotaStateStore = (
            state_store if state_store is not None else MemoryStateStore()
        )
        self._ledger = ledger  # the day counts shared with other workers (None: this process)
        self._window = window  # the per-minute windows shared through Redis (None: local)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._secrets = tuple(k.secret for k in settings.keys)
        self._keys_by_project: dict[str, list[ApiKey]] = {}
        for key in settings.keys:
            self._keys_by_project.setdefault(key.project, []).append(key)
        self._sdk: dict[str, genai.Client] = {}
        self._models: list[str] = list(settings.models)
        self._output_limits: dict[str, int] = {}  # models.list's outputTokenLimit per model
        self._semaphore = asyncio.Semaphore(settings.max_in_flight)
        self._start_lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._started = False
        # Slow start: a pair without a success in this run on this Pacific day gets one
        # request at a time (a probe): a restart against an exhausted or saturated project
        # costs one 429, not max_in_flight of them. Value: the day of the last success.
        self._proven: dict[Pair, date] = {}
        self._probes: dict[Pair, asyncio.Future[None]] = {}

    # --- lifecycle -------------------------------------------------------------------
    @property
    def models(self) -> tuple[str, ...]:
        """The usable preference list (after ``models.list`` filtering and drops)."""
        return tuple(m for m in self._models if not self.state.is_model_dropped(m))

    async def start(self) -> None:
        """Load persisted quota state, create the SDK clients, filter the model list."""
        async with self._start_lock:
            if self._started:
                return
            if not self.settings.keys:
                raise EnrichmentUnavailable("no_api_key", "set GEMINI_API_KEYS or GEMINI_API_KEY")
            await self._load_state()
            http_options = types.HttpOptions(
                base_url=self.settings.base_url,
                api_version=self.settings.api_version,
                timeout=int(self.settings.request_timeout * 1000),
                # attempts=1 also turns off the SDK's hidden sleep-and-retry on
                # connection errors: retries and waits are decided here.
                retry_options=types.HttpRetryOptions(attempts=1),
            )
            for key in self.settings.keys:
                if key.fingerprint in self._sdk:  # a start() that failed half-way
                    continue
                self._sdk[key.fingerprint] = genai.Client(
                    vertexai=False, api_key=key.secret, http_options=http_options
                )
            await self._filter_models()
            self._started = True

    async def close(self) -> None:
        """Save the quota state and close every SDK client."""
        if self._started:
            await self._save()
        clients, self._sdk = list(self._sdk.values()), {}
        for client in clients:
            await client.aio.aclose()
        self._started = False

    async def __aenter__(self) -> GeminiClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _load_state(self) -> None:
        try:
            data = await self._store.load()
        except Exception as exc:
            logger.warning(
                "Gemini quota state could not be loaded (%s); starting fresh", self._safe(exc)
            )
            return
        self.state.load(data, self._clock())
        for key in self.settings.keys:
            reason = self.state.disabled_key_reason(key.fingerprint)
            if reason:
                logger.warning(
                    "Gemini key %s (project %s) stays disabled from an earlier run (%s); "
                    "clear the gemini_quota state to try it again",
                    key.fingerprint,
                    key.project,
                    reason,
                )

    async def _save(self) -> None:
        async with self._save_lock:
            try:
                await self._store.save(self.state.to_dict(self._clock()))
            except Exception as exc:
                logger.warning("Gemini quota state could not be saved: %s", self._safe(exc))

    def _safe(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}", self._secrets)

    # --- model list ------------------------------------------------------------------
    async def _filter_models(self) -> None:
        offered: dict[str, list[str]] | None = None
        for key in self._usable_keys_all():
            try:
                offered = await self._list_models(key)
            except Exception as exc:
                failure = classify_exception(exc, secrets=self._secrets)
                if failure is None:
                    raise
                if failure.kind in (FailureKind.BAD_KEY, FailureKind.BILLING):
                    await self._disable_for(key, failure)
                    continue
                if failure.kind is FailureKind.PRECONDITION:
                    raise EnrichmentUnavailable(
                        "failed_precondition", failure.short_message
                    ) from None
                logger.warning(
                    "Gemini models.list failed (%s: %s); using the configured models unfiltered",
                    failure.kind,
                    failure.short_message,
                )
                return
            break
        if offered is None:
            self._raise_if_unusable()
            return
        kept: list[str] = []
        for model in self._models:
            actions = offered.get(model)
            if actions is None:
                logger.warning(
                    "Gemini model %s dropped: models.list does not offer it (retired or misspelt)",
                    model,
                )
            elif "generateContent" not in actions:
                logger.warning(
                    "Gemini model %s dropped: it does not support generateContent", model
                )
            else:
                kept.append(model)
        self._models = kept
        self._raise_if_unusable()

    async def _list_models(self, key: ApiKey) -> dict[str, list[str]]:
        pager = await self._sdk[key.fingerprint].aio.models.list(
            config={"page_size": _MODELS_PAGE_SIZE}
        )
        offered: dict[str, list[str]] = {}
        async for model in pager:
            if model.name:
                name = normalize_model(model.name)
                offered[name] = list(model.supported_actions or [])
                if model.output_token_limit:
                    self._output_limits[name] = int(model.output_token_limit)
        return offered

    def output_token_limit(self) -> int:
        """The smallest ``outputTokenLimit`` of the usable models (models.list), or the
        configured ``max_output_tokens`` when the service did not say."""
        limits = [self._output_limits[m] for m in self.models if m in self._output_limits]
        return min(limits) if limits else self.settings.max_output_tokens

    def remaining_today(self) -> int | None:
        """Requests the usable (project, model) pairs may still send this Pacific day by
        their known daily limits; None while any usable pair's daily limit is unknown."""
        now = self._clock()
        total = 0
        for model in self.models:
            for project in self._keys_by_project:
                if not self._usable_keys(project) or self.state.is_dropped_for_project(
                    project, model
                ):
                    continue
                if self.state.exhausted_until(project, model, now) is not None:
                    continue
                limiter = self.state.limiter(project, model)
                if limiter.limits.rpd is None:
                    return None
                used = limiter.day_count if limiter.day == pacific_day(now) else 0
                total += max(limiter.limits.rpd - used, 0)
        return total

    def _usable_keys_all(self) -> list[ApiKey]:
        return [k for k in self.settings.keys if not self.state.is_key_disabled(k.fingerprint)]

    def _usable_keys(self, project: str) -> list[ApiKey]:
        return [
            k
            for k in self._keys_by_project.get(project, [])
            if not self.state.is_key_disabled(k.fingerprint)
        ]

    def _raise_if_unusable(self) -> None:
        if not self._usable_keys_all():
            raise EnrichmentUnavailable(
                "no_usable_key",
                "every configured Gemini key is disabled: "
                + ", ".join(
                    f"{k.fingerprint} ({self.state.disabled_key_reason(k.fingerprint)})"
                    for k in self.settings.keys
                ),
            )
        if not self.models:
            raise EnrichmentUnavailable(
                "no_usable_model",
                f"none of the configured models {list(self.settings.models)} can be used",
            )

    # --- generate --------------------------------------------------------------------
    async def generate(
        self,
        parts: Sequence[types.Part | str],
        schema: Schema,
        *,
        thinking: bool = False,
        max_output_tokens: int | None = None,
    ) -> Generation:
        """One structured-output request, routed and retried under the quota rules
        (``max_output_tokens``: this call's cap instead of ``GEMINI_MAX_OUTPUT_TOKENS``).

        Raises ``QuotaDeferred``, ``BadInput``, ``ContentBlocked``, ``TruncatedOutput``
        or ``EnrichmentUnavailable`` (see ``errors``).
        """
        if not self._started:
            await self.start()
        call = _CallState(max_output_tokens=max_output_tokens or self.settings.max_output_tokens)
        try:
            return await self._generate(list(parts), schema, thinking, call)
        except GeminiError as exc:
            exc.requests_spent = call.attempts
            raise

    async def _generate(
        self, contents: list[types.Part | str], schema: Schema, thinking: bool, call: _CallState
    ) -> Generation:
        tokens = estimate_tokens(contents)
        while True:
            failure: Failure | None = None
            pick: _Pick | None = None
            async with self._semaphore:
                now = self._clock()
                route = self._route(now, tokens, call)
                if isinstance(route, _Pick):
                    pick = route
                    try:
                        failure_or_result = await self._send(
                            pick, contents, schema, thinking, tokens, call
                        )
                    except EmptyAnswer:
                        call.empty_answers += 1
                        if call.empty_answers > 1:
                            raise
                        continue  # once more: an empty answer is a glitch, not a verdict
                    if failure_or_result is None:
                        continue  # the shared day count is full: route again
                    if isinstance(failure_or_result, Generation):
                        return failure_or_result
                    failure = failure_or_result
            if pick is not None and failure is not None:
                await self._react(pick, failure, call)
            elif isinstance(route, list):
                await asyncio.wait(route, return_when=asyncio.FIRST_COMPLETED)
            else:
                await self._wait_until(float(route), call)

    def _route(
        self, now: float, tokens: int, call: _CallState
    ) -> _Pick | float | list[asyncio.Future[None]]:
        """First admissible (model, project) in preference order; else what to wait for.

        Returns a pick, the in-flight probes of the most preferred model to wait for, or
        the earliest time something frees. Raises when nothing can serve this call.
        """
        self._raise_if_unusable()
        if call.attempts >= self.settings.max_attempts:
            self._defer_after_failures(now, call)
        earliest: float | None = None
        for model in self.models:
            if model in call.skipped_models:
                continue
            if call.timed_out_on is not None and model != call.timed_out_on:
                continue
            probes: list[asyncio.Future[None]] = []
            soon: float | None = None  # this model frees within the spacing: wait for it
            for project in self._keys_by_project:
                usable = self._usable_keys(project)
                if not usable or self.state.is_dropped_for_project(project, model):
                    continue
                until = self.state.exhausted_until(project, model, now)
                if until is not None:
                    earliest = until if earliest is None else min(earliest, until)
                    continue
                probe = self._probes.get((project, model))
                if probe is not None and not probe.done():
                    probes.append(probe)
                    continue
                limiter = self.state.limiter(project, model)
                at = limiter.next_admission(now, tokens)
                if at <= now:
                    return _Pick(model, project, usable[0], limiter)
                earliest = at if earliest is None else min(earliest, at)
                if at - now <= self.settings.unknown_rpm_spacing:
                    soon = at if soon is None else min(soon, at)
            if probes:
                # A probe of this model answers within one request: wait for it rather
                # than spend a less preferred model's quota.
                return probes
            if soon is not None:
                return soon
        if earliest is None:
            if call.skipped_models:
                self._defer_after_failures(now, call)
            raise EnrichmentUnavailable(
                "no_quota", "no configured project has any quota for the configured models"
            )
        if earliest >= next_pacific_midnight(now):
            self._defer_reason("daily_quota_exhausted", earliest, call)
        if call.waited + (earliest - now) > self.settings.max_wait:
            self._defer_reason("rate_limited", earliest, call)
        return earliest

    def _defer_after_failures(self, now: float, call: _CallState) -> NoReturn:
        """Give up on a call whose retries ran out (repeated 429s or server errors)."""
        if call.last is not None and call.last.kind.is_quota:
            self._defer_reason("rate_limited", now + self.settings.max_retry_delay, call)
        self._defer_reason("server_errors", now + self.settings.server_error_defer, call)

    def _defer_reason(self, reason: str, at: float, call: _CallState) -> NoReturn:
        self.stats[f"deferred/{reason}"] += 1
        detail = f"last failure: {call.last.summary}" if call.last else ""
        raise QuotaDeferred(reason, _utc(at), detail)

    async def _wait_until(self, at: float, call: _CallState) -> None:
        delay = max(at - self._clock(), 0.0)
        self.stats["waits"] += 1
        self.stats["wait_seconds"] += delay
        call.waited += delay
        await self._sleep(delay)

    async def _send(
        self,
        pick: _Pick,
        contents: list[types.Part | str],
        schema: Schema,
        thinking: bool,
        tokens: int,
        call: _CallState,
    ) -> Generation | Failure | None:
        """Send one request; None when the shared ledger refused it (nothing was sent)."""
        pair = (pick.project, pick.model)
        probe: asyncio.Future[None] | None = None
        sent_at = self._clock()
        if not self._is_proven(pair, sent_at):
            probe = self._probes[pair] = asyncio.get_running_loop().create_future()
        pick.limiter.record(sent_at, tokens)
        if not await self._admit_shared(pick, sent_at, tokens):
            if probe is not None:
                self._probes.pop(pair, None)
                probe.set_result(None)
            return None
        if call.attempts:
            self.stats["retries"] += 1
        call.attempts += 1
        self.stats["requests"] += 1
        self.stats[f"requests/{pick.model}"] += 1
        self.stats[f"requests_by_key/{pick.key.fingerprint}"] += 1
        timeout = None
        if call.timed_out_on is not None:
            timeout = self.settings.request_timeout * self.settings.timeout_retry_factor
        config = generation_config(
            pick.model,
            schema,
            thinking=thinking,
            max_output_tokens=call.max_output_tokens,
            timeout=timeout,
        )
        try:
            response = await self._sdk[pick.key.fingerprint].aio.models.generate_content(
                model=pick.model, contents=contents, config=config
            )
        except Exception as exc:
            failure = classify_exception(exc, secrets=self._secrets)
            if failure is None:
                raise
            self._proven.pop(pair, None)
            if failure.kind.is_quota:  # refused at the door: no quota spent
                pick.limiter.refund(sent_at, tokens)
                if self._ledger is not None:
                    await self._ledger.refund(pick.project, pick.model, sent_at)
            return failure
        else:
            self._proven[pair] = pacific_day(self._clock())
            return self._result(pick, response, call)
        finally:
            if probe is not None:
                self._probes.pop(pair, None)
                probe.set_result(None)

    async def _admit_shared(self, pick: _Pick, sent_at: float, tokens: int) -> bool:
        """The shared books (day ledger, then minute window) admit this request; when one
        does not, nothing is booked anywhere and the pair waits (route again)."""
        if self._ledger is not None and not await self._reserve_shared(pick, sent_at, tokens):
            return False
        rpm = pick.limiter.limits.rpm
        if self._window is None or rpm is None:
            return True
        try:
            free_at = await self._window.admit(pick.project, pick.model, sent_at, rpm)
        except Exception as exc:  # Redis is down: this process's own window still holds
            logger.warning("shared Gemini minute window unavailable: %s", self._safe(exc))
            return True
        if free_at <= 0:
            return True
        pick.limiter.refund(sent_at, tokens)
        if self._ledger is not None:
            with contextlib.suppress(Exception):  # the store is down: the day count errs high
                await self._ledger.refund(pick.project, pick.model, sent_at)
        pick.limiter.block(free_at)
        self.stats["waits_shared/per_minute"] += 1
        return False

    async def _reserve_shared(self, pick: _Pick, sent_at: float, tokens: int) -> bool:
        """Book the request in the shared day count too; False (and the pair out for the
        day) when other workers have used the day's requests up or hit the per-day 429."""
        assert self._ledger is not None
        try:
            grant = await self._ledger.reserve(
                pick.project, pick.model, sent_at, pick.limiter.limits.rpd
            )
        except Exception as exc:  # the store is down: this process's own count still holds
            logger.warning("shared Gemini quota unavailable: %s", self._safe(exc))
            return True
        if grant.limit is not None:
            self.state.learn(pick.project, pick.model, ModelLimits(rpd=grant.limit))
        day = pacific_day(sent_at)
        if grant.granted:
            pick.limiter.restore_day(day, max(pick.limiter.day_count, grant.count))
            return True
        pick.limiter.refund(sent_at, tokens)
        until = max(grant.blocked_until or 0.0, next_pacific_midnight(sent_at))
        self.state.mark_exhausted(pick.project, pick.model, until, "per_day_shared")
        self.stats["deferred_shared/per_day"] += 1
        return False

    def _is_proven(self, pair: Pair, now: float) -> bool:
        return self._proven.get(pair) == pacific_day(now)

    def _result(
        self, pick: _Pick, response: types.GenerateContentResponse, call: _CallState
    ) -> Generation:
        meta = response.usage_metadata
        prompt = (meta.prompt_token_count or 0) if meta else 0
        output = (
            ((meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)) if meta else 0
        )
        total = (meta.total_token_count or prompt + output) if meta else 0
        self.stats["tokens_in"] += prompt
        self.stats["tokens_out"] += output
        where = f"model {pick.model}, project {pick.project}, key {pick.key.fingerprint}"
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            self.stats["blocked/prompt_blocked"] += 1
            raise ContentBlocked(
                "prompt_blocked", f"prompt blocked ({_name(feedback.block_reason)}; {where})"
            )
        if not response.candidates:
            self.stats["empty_answers"] += 1
            raise EmptyAnswer(
                "no_candidates", f"the answer has no candidates and no block reason ({where})"
            )
        finish = _name(response.candidates[0].finish_reason)
        if blocking_finish_reason(finish):
            self.stats[f"blocked/{finish.lower()}"] += 1
            raise ContentBlocked(
                finish.lower(), f"answer withheld: finish reason {finish} ({where})"
            )
        if finish == "MAX_TOKENS":
            self.stats["truncated/max_tokens"] += 1
            raise TruncatedOutput("max_tokens", f"output cut at max_output_tokens ({where})")
        if response.parsed is None:
            self.stats["truncated/unparsable"] += 1
            raise TruncatedOutput(
                "unparsable", f"no valid JSON for the schema in the answer ({where})"
            )
        return Generation(
            parsed=response.parsed,
            text=response.text or "",
            model=pick.model,
            project=pick.project,
            key_fp=pick.key.fingerprint,
            usage={
                "prompt_tokens": prompt,
                "output_tokens": output,
                "total_tokens": total,
                "requests": call.attempts,
            },
            finish_reason=finish,
        )

    # --- reactions -------------------------------------------------------------------
    async def _react(self, pick: _Pick, failure: Failure, call: _CallState) -> None:
        """Apply a classified failure: update the quota book, wait, or raise."""
        call.last = failure
        kind = failure.kind
        self.stats[f"errors/{kind}"] += 1
        if kind.is_quota:
            self.stats[f"429/{kind}"] += 1
        now = self._clock()
        where = f"model {pick.model}, project {pick.project}, key {pick.key.fingerprint}"
        if kind is FailureKind.PER_MINUTE:
            if failure.quota_value and failure.metric in ("rpm", "tpm"):
                self.state.learn(
                    pick.project, pick.model, ModelLimits(**{failure.metric: failure.quota_value})
                )
            backoff = self.settings.backoff_base * 2**call.rate_retries
            delay = max(failure.retry_after or 0.0, backoff) * (
                1 + self._rng.uniform(0, self.settings.jitter)
            )
            delay = min(delay, self.settings.max_retry_delay)
            call.rate_retries += 1
            pick.limiter.block(now + delay)
            logger.info("Gemini per-minute limit (%s); next slot in %.1f s", where, delay)
        elif kind is FailureKind.PER_DAY:
            until = next_pacific_midnight(now)
            self.state.mark_exhausted(pick.project, pick.model, until, str(kind))
            if failure.quota_value:
                self.state.learn(pick.project, pick.model, ModelLimits(rpd=failure.quota_value))
            if self._ledger is not None:
                with contextlib.suppress(Exception):  # best effort: the 429 speaks for itself
                    await self._ledger.block(
                        pick.project, pick.model, now, until, failure.quota_value
                    )
            logger.warning(
                "Gemini daily quota exhausted (%s, limit %s); not used again before %s",
                where,
                failure.quota_value,
                _utc(until).isoformat(),
            )
            await self._save()
        elif kind is FailureKind.LIMIT_ZERO:
            self.state.drop_for_project(pick.project, pick.model, str(kind), now)
            logger.warning(
                "Gemini project %s has no quota at all for %s: model dropped there",
                pick.project,
                pick.model,
            )
            await self._save()
        elif kind in (FailureKind.BAD_KEY, FailureKind.BILLING):
            await self._disable_for(pick.key, failure)
        elif kind is FailureKind.MODEL_NOT_FOUND:
            self.state.drop_model(pick.model, str(kind), now)
            logger.warning(
                "Gemini model %s dropped for this and later runs: %s",
                pick.model,
                failure.short_message,
            )
            await self._save()
        elif kind is FailureKind.PRECONDITION:
            raise EnrichmentUnavailable("failed_precondition", f"{failure.short_message} ({where})")
        elif kind is FailureKind.BAD_IMAGE:
            raise BadInput("bad_image", f"{failure.short_message} ({where})")
        elif kind is FailureKind.INVALID_REQUEST:
            raise BadInput(
                "invalid_request", f"{failure.status}: {failure.short_message} ({where})"
            )
        elif kind is FailureKind.TIMEOUT:
            self._timed_out(pick, call, now)
        else:  # SERVER, TRANSPORT
            await self._server_backoff(pick, failure, call, now)

    def _timed_out(self, pick: _Pick, call: _CallState, now: float) -> None:
        """A spent request without an answer: retry once, longer, on this model; then defer."""
        self.stats["timeouts"] += 1
        first = call.timed_out_on is None
        call.timed_out_on = pick.model
        logger.info(
            "Gemini request timed out (%s, project %s); %s",
            pick.model,
            pick.project,
            "retrying once with a longer timeout" if first else "deferring the call",
        )
        if not first:
            self.stats["deferred/timeout"] += 1
            longer = self.settings.request_timeout * self.settings.timeout_retry_factor
            raise RequestTimedOut(
                "timeout",
                _utc(now + self.settings.server_error_defer),
                f"no answer within {self.settings.request_timeout:g} s, then {longer:g} s "
                f"(model {pick.model}, project {pick.project})",
            )

    async def _server_backoff(
        self, pick: _Pick, failure: Failure, call: _CallState, now: float
    ) -> None:
        call.server_errors[pick.model] += 1
        errors = call.server_errors[pick.model]
        logger.info(
            "Gemini %s on %s (%s, attempt %d): %s",
            failure.kind,
            pick.model,
            pick.project,
            errors,
            failure.short_message,
        )
        if errors > self.settings.server_retries:
            call.skipped_models.add(pick.model)
            return
        delay = min(self.settings.backoff_base * 2 ** (errors - 1), self.settings.backoff_max)
        delay *= 1 + self._rng.uniform(0, self.settings.jitter)
        if call.waited + delay > self.settings.max_wait:
            call.skipped_models.add(pick.model)
            return
        await self._wait_until(now + delay, call)

    async def _disable_for(self, key: ApiKey, failure: Failure) -> None:
        """Disable a key (bad key) or all keys of its project (billing)."""
        now = self._clock()
        victims = (
            self._keys_by_project[key.project] if failure.kind is FailureKind.BILLING else [key]
        )
        for victim in victims:
            self.state.disable_key(victim.fingerprint, victim.project, str(failure.kind), now)
            logger.warning(
                "Gemini key %s (project %s) disabled: %s — %s",
                victim.fingerprint,
                victim.project,
                failure.kind,
                failure.short_message,
            )
        await self._save()


def _name(value: object) -> str:
    """Enum or string to its wire name (``FinishReason.STOP`` → ``STOP``)."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))
