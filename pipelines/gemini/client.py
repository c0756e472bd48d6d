"""Quota-aware async Gemini client on the official google-genai SDK.

One SDK client per key (``api_version`` pinned to v1beta), a bounded number of requests
in flight, a model preference list filtered by ``models.list`` at start
(:mod:`.catalog`), routing over (model, project) pairs with a client-side limiter
(:mod:`.limiter`), and every failure classified (``errors.classify``) and acted on
(:mod:`.reactions`): per-minute 429 → wait and retry, per-day 429 → the pair is out
until Pacific midnight, bad key → disabled, retired model → dropped, and so on. When
nothing can serve within the wait bound the call raises ``QuotaDeferred`` (:mod:`.call`)
so the caller can store the item as deferred instead of blocking the crawl.

This module keeps the client's life cycle (quota state load/save, SDK clients, model
list) and one call's loop: route, send, read the answer (:mod:`.answers`), react.
Beside it: :mod:`.slow_start` (one request at a time to a pair not yet proven today),
:mod:`.shared_books` (the day ledger and minute window shared with other workers).

Spend: every request sent counts (``stats["requests"]``, ``Generation.usage["requests"]``,
``GeminiError.requests_spent``), a timed-out one too, since the server finishes and bills
it. A timeout is retried once, on the same model, with ``timeout_retry_factor`` times the
timeout; a second one raises ``RequestTimedOut`` (no fan-out over the other models). An
answer without candidates is retried once, then raises ``EmptyAnswer``.

Stopping: ``stopping()`` (the caller's predicate, e.g. "the crawl was asked to stop") is
asked right before each request goes out; once it is true, a call raises
``SendingStopped`` instead of sending, whether it was waiting for a slot, a limiter
admission or a retry. An answer that would arrive after the process ended is paid for
and lost, and the next run would pay for it again.

(About 450 lines: the life cycle and the route/send loop share the SDK clients, the
in-flight bound and the quota book; the parts that need none of them live beside it.)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from google import genai
from google.genai import types

from .answers import Generation, Schema, generation_config, read_answer
from .call import CallState, Pick, defer, give_up
from .catalog import UNSTATED_INPUT_TOKEN_LIMIT, TokenLimits, kept_models, list_models
from .errors import (
    EmptyAnswer,
    EnrichmentUnavailable,
    Failure,
    FailureKind,
    GeminiError,
    SendingStopped,
    classify_exception,
)
from .keys import ApiKey, redact
from .limiter import estimate_tokens, next_pacific_midnight, pacific_day
from .reactions import Reactions
from .settings import GeminiSettings
from .shared_books import SharedBooks
from .slow_start import SlowStart
from .state import MemoryStateStore, MinuteWindow, QuotaLedger, QuotaState, QuotaStateStore

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


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
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self._stopping = stopping
        self.stats: Counter[str] = Counter()
        self.state = QuotaState(settings.limits, settings.unknown_rpm_spacing)
        self._store: QuotaStateStore = (
            state_store if state_store is not None else MemoryStateStore()
        )
        self._clock = clock
        self._sleep = sleep
        self._secrets = tuple(k.secret for k in settings.keys)
        self._keys_by_project: dict[str, list[ApiKey]] = {}
        for key in settings.keys:
            self._keys_by_project.setdefault(key.project, []).append(key)
        self._sdk: dict[str, genai.Client] = {}
        self._models: list[str] = list(settings.models)
        self._token_limits: dict[str, TokenLimits] = {}  # per model, from models.list
        self._semaphore = asyncio.Semaphore(settings.max_in_flight)
        self._start_lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._started = False
        self._slow_start = SlowStart()
        self._books = SharedBooks(ledger, window, self.state, self.stats, self._safe)
        self._reactions = Reactions(
            settings,
            self.state,
            self._books,
            self.stats,
            keys_by_project=self._keys_by_project,
            clock=clock,
            rng=rng or random.Random(),
            save=self._save,
            wait_until=self._wait_until,
        )

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
        """Give unused shared reservations back, save the quota state and close every
        SDK client."""
        await self._books.close()
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
                offered, limits = await list_models(self._sdk[key.fingerprint])
            except Exception as exc:
                failure = classify_exception(exc, secrets=self._secrets)
                if failure is None:
                    raise
                if failure.kind in (FailureKind.BAD_KEY, FailureKind.BILLING):
                    await self._reactions.disable_for(key, failure)
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
            self._token_limits.update(limits)
            break
        if offered is not None:
            self._models = kept_models(self._models, offered)
        self._raise_if_unusable()

    def output_token_limit(self) -> int:
        """The smallest ``outputTokenLimit`` of the usable models (models.list), or the
        configured ``max_output_tokens`` when the service did not say."""
        limits = [t.output for m in self.models if (t := self._token_limits.get(m)) and t.output]
        return min(limits) if limits else self.settings.max_output_tokens

    def input_token_limit(self) -> int:
        """The smallest ``inputTokenLimit`` of the usable models (models.list), or
        :data:`UNSTATED_INPUT_TOKEN_LIMIT` when the service did not say."""
        limits = [t.input for m in self.models if (t := self._token_limits.get(m)) and t.input]
        return min(limits) if limits else UNSTATED_INPUT_TOKEN_LIMIT

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
        call = CallState(max_output_tokens=max_output_tokens or self.settings.max_output_tokens)
        try:
            return await self._generate(list(parts), schema, thinking, call)
        except GeminiError as exc:
            exc.requests_spent = call.attempts
            raise

    async def _generate(
        self, contents: list[types.Part | str], schema: Schema, thinking: bool, call: CallState
    ) -> Generation:
        tokens = estimate_tokens(contents)
        while True:
            failure: Failure | None = None
            pick: Pick | None = None
            async with self._semaphore:
                now = self._clock()
                route = self._route(now, tokens, call)
                if isinstance(route, Pick):
                    pick = route
                    if self._stopping():
                        self.stats["stopped_before_send"] += 1
                        raise SendingStopped("run_stopping", "no new request: the run is stopping")
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
                await self._reactions.react(pick, failure, call)
            elif isinstance(route, list):
                await asyncio.wait(route, return_when=asyncio.FIRST_COMPLETED)
            else:
                await self._wait_until(float(route), call)

    def _route(
        self, now: float, tokens: int, call: CallState
    ) -> Pick | float | list[asyncio.Future[None]]:
        """First admissible (model, project) in preference order; else what to wait for.

        Returns a pick, the in-flight probes of the most preferred model to wait for, or
        the earliest time something frees. Raises when nothing can serve this call.
        """
        self._raise_if_unusable()
        if call.attempts >= self.settings.max_attempts:
            give_up(now, call, self.settings, self.stats)
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
                probe = self._slow_start.probe_of((project, model))
                if probe is not None:
                    probes.append(probe)
                    continue
                limiter = self.state.limiter(project, model)
                at = limiter.next_admission(now, tokens)
                if at <= now:
                    return Pick(model, project, usable[0], limiter)
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
                give_up(now, call, self.settings, self.stats)
            raise EnrichmentUnavailable(
                "no_quota", "no configured project has any quota for the configured models"
            )
        if earliest >= next_pacific_midnight(now):
            defer("daily_quota_exhausted", earliest, call, self.stats)
        if call.waited + (earliest - now) > self.settings.max_wait:
            defer("rate_limited", earliest, call, self.stats)
        return earliest

    async def _wait_until(self, at: float, call: CallState) -> None:
        delay = max(at - self._clock(), 0.0)
        self.stats["waits"] += 1
        self.stats["wait_seconds"] += delay
        call.waited += delay
        await self._sleep(delay)

    async def _send(
        self,
        pick: Pick,
        contents: list[types.Part | str],
        schema: Schema,
        thinking: bool,
        tokens: int,
        call: CallState,
    ) -> Generation | Failure | None:
        """Send one request; None when a shared book refused it (nothing was sent)."""
        pair = (pick.project, pick.model)
        sent_at = self._clock()
        probe = self._slow_start.begin(pair, sent_at)
        pick.limiter.record(sent_at, tokens)
        if not await self._books.admit(pick, sent_at, tokens):
            self._slow_start.end(pair, probe)
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
            self._slow_start.failed(pair)
            if failure.kind.is_quota:  # refused at the door: no quota spent
                pick.limiter.refund(sent_at, tokens)
                await self._books.refund(pick, sent_at)
            else:  # counted, perhaps: from its answer on, as an answered one
                pick.limiter.settle(sent_at, tokens, self._clock())
            return failure
        else:
            answered_at = self._clock()
            pick.limiter.settle(sent_at, tokens, answered_at)
            self._slow_start.succeeded(pair, answered_at)
            return read_answer(
                response,
                model=pick.model,
                project=pick.project,
                key_fp=pick.key.fingerprint,
                requests=call.attempts,
                stats=self.stats,
            )
        finally:
            self._slow_start.end(pair, probe)
