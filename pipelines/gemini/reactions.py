"""What the client does after each classified failure (``errors.classify``).

- per-minute 429: learn the limit it names, block the pair for ``max(retryDelay,
  backoff)`` (jittered, capped by ``GEMINI_MAX_RETRY_DELAY``), retry;
- per-day 429: the pair is out until Pacific midnight, for every worker sharing the day
  ledger; limit zero: the model is dropped for that project;
- bad key / billing: the key / every key of its project is disabled (saved: later runs
  keep it off); retired model: dropped for this and later runs;
- precondition → ``EnrichmentUnavailable``; bad image or invalid request → ``BadInput``;
- timeout: retried once, on the same model, ``GEMINI_TIMEOUT_RETRY_FACTOR`` times
  longer; a second one raises ``RequestTimedOut`` (no fan-out over other models);
- 5xx and transport errors: exponential backoff per model, the model skipped for the
  call after ``GEMINI_SERVER_RETRIES`` or when the wait would pass ``GEMINI_MAX_WAIT``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable

from .call import CallState, Pick, utc
from .errors import BadInput, EnrichmentUnavailable, Failure, FailureKind, RequestTimedOut
from .keys import ApiKey
from .limiter import ModelLimits, next_pacific_midnight
from .settings import GeminiSettings
from .shared_books import SharedBooks
from .state import QuotaState

logger = logging.getLogger(__name__)


class Reactions:
    """Applies failures to the quota book (``state``), the shared books and the call."""

    def __init__(
        self,
        settings: GeminiSettings,
        state: QuotaState,
        books: SharedBooks,
        stats: Counter[str],
        *,
        keys_by_project: dict[str, list[ApiKey]],
        clock: Callable[[], float],
        rng: random.Random,
        save: Callable[[], Awaitable[None]],
        wait_until: Callable[[float, CallState], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.state = state
        self.books = books
        self.stats = stats
        self._keys_by_project = keys_by_project
        self._clock = clock
        self._rng = rng
        self._save = save
        self._wait_until = wait_until

    async def react(self, pick: Pick, failure: Failure, call: CallState) -> None:
        """Apply a classified failure: update the quota book, wait, or raise."""
        call.last = failure
        kind = failure.kind
        self.stats[f"errors/{kind}"] += 1
        if kind.is_quota:
            self.stats[f"429/{kind}"] += 1
        now = self._clock()
        if kind is FailureKind.PER_MINUTE:
            self._per_minute(pick, failure, call, now)
        elif kind is FailureKind.PER_DAY:
            await self._per_day(pick, failure, now)
        elif kind is FailureKind.LIMIT_ZERO:
            self.state.drop_for_project(pick.project, pick.model, str(kind), now)
            logger.warning(
                "Gemini project %s has no quota at all for %s: model dropped there",
                pick.project,
                pick.model,
            )
            await self._save()
        elif kind in (FailureKind.BAD_KEY, FailureKind.BILLING):
            await self.disable_for(pick.key, failure)
        elif kind is FailureKind.MODEL_NOT_FOUND:
            self.state.drop_model(pick.model, str(kind), now)
            logger.warning(
                "Gemini model %s dropped for this and later runs: %s",
                pick.model,
                failure.short_message,
            )
            await self._save()
        elif kind is FailureKind.PRECONDITION:
            raise EnrichmentUnavailable(
                "failed_precondition", f"{failure.short_message} ({pick.where})"
            )
        elif kind is FailureKind.BAD_IMAGE:
            raise BadInput("bad_image", f"{failure.short_message} ({pick.where})")
        elif kind is FailureKind.INVALID_REQUEST:
            raise BadInput(
                "invalid_request", f"{failure.status}: {failure.short_message} ({pick.where})"
            )
        elif kind is FailureKind.TIMEOUT:
            self._timed_out(pick, call, now)
        else:  # SERVER, TRANSPORT
            await self._server_backoff(pick, failure, call, now)

    def _per_minute(self, pick: Pick, failure: Failure, call: CallState, now: float) -> None:
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
        logger.info("Gemini per-minute limit (%s); next slot in %.1f s", pick.where, delay)

    async def _per_day(self, pick: Pick, failure: Failure, now: float) -> None:
        until = next_pacific_midnight(now)
        self.state.mark_exhausted(pick.project, pick.model, until, str(failure.kind))
        if failure.quota_value:
            self.state.learn(pick.project, pick.model, ModelLimits(rpd=failure.quota_value))
        await self.books.block_day(pick, now, until, failure.quota_value)
        logger.warning(
            "Gemini daily quota exhausted (%s, limit %s); not used again before %s",
            pick.where,
            failure.quota_value,
            utc(until).isoformat(),
        )
        await self._save()

    def _timed_out(self, pick: Pick, call: CallState, now: float) -> None:
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
                utc(now + self.settings.server_error_defer),
                f"no answer within {self.settings.request_timeout:g} s, then {longer:g} s "
                f"(model {pick.model}, project {pick.project})",
            )

    async def _server_backoff(
        self, pick: Pick, failure: Failure, call: CallState, now: float
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

    async def disable_for(self, key: ApiKey, failure: Failure) -> None:
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
