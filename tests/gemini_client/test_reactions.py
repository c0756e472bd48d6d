"""pipelines/gemini/reactions.py: what each classified failure does to the quota book,
the shared books and the call. The failures are classify() of the real error bodies in
tests/data/gemini-errors/ (and of real exceptions); the shared day count is the Mongo
quota ledger on the real Mongo-wire server over TCP."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from typing import Any

import httpx2
import pytest

from pipelines.gemini import (
    ApiKey,
    BadInput,
    EnrichmentUnavailable,
    FailureKind,
    GeminiSettings,
    QuotaState,
    RequestTimedOut,
    classify,
    classify_exception,
    next_pacific_midnight,
)
from pipelines.gemini.call import CallState, Pick, utc
from pipelines.gemini.reactions import Reactions
from pipelines.gemini.shared_books import SharedBooks
from pipelines.gemini.state import QuotaLedger
from pipelines.mongo import MongoQuotaLedger
from tests.gemini_client.helpers import FLASH, KEY_A1, KEY_A2, KEY_B1, LITE, START, failure_of

NOW = datetime.fromisoformat(START).timestamp()
KEYS = {
    "projA": [ApiKey("projA", KEY_A1), ApiKey("projA", KEY_A2)],
    "projB": [ApiKey("projB", KEY_B1)],
}


class Rig:
    """Reactions on a fixed clock, with what they save and wait recorded."""

    def __init__(self, ledger: QuotaLedger | None = None, **env: Any) -> None:
        self.settings = GeminiSettings.from_env_like(
            {"GEMINI_JITTER": "0", "GEMINI_BACKOFF_BASE": "1", **env}
        )
        self.state = QuotaState()
        self.stats: Counter[str] = Counter()
        self.books = SharedBooks(ledger, None, self.state, self.stats, str)
        self.saves = 0
        self.waits: list[float] = []
        self.reactions = Reactions(
            self.settings,
            self.state,
            self.books,
            self.stats,
            keys_by_project=KEYS,
            clock=lambda: NOW,
            rng=random.Random(7),
            save=self._save,
            wait_until=self._wait_until,
        )

    async def _save(self) -> None:
        self.saves += 1

    async def _wait_until(self, at: float, call: CallState) -> None:
        self.waits.append(at - NOW)
        call.waited += at - NOW

    def pick(self, model: str = LITE, key: ApiKey = KEYS["projA"][0]) -> Pick:
        return Pick(model, key.project, key, self.state.limiter(key.project, model))


async def test_per_minute_429_learns_the_limit_and_waits_its_retry_delay() -> None:
    rig = Rig()
    pick, call = rig.pick(FLASH), CallState()
    failure = failure_of("429_input_tokens_per_minute.json")
    await rig.reactions.react(pick, failure, call)
    assert call.last is failure and call.rate_retries == 1
    assert pick.limiter.limits.tpm == 250000
    assert pick.limiter.blocked_until == NOW + 26.0  # retryDelay beats the 1 s backoff
    assert rig.stats == Counter({"errors/per_minute": 1, "429/per_minute": 1})
    assert rig.saves == 0 and rig.waits == []


async def test_per_minute_429_without_a_delay_backs_off_jittered_and_capped() -> None:
    rig = Rig(GEMINI_JITTER="0.5", GEMINI_MAX_RETRY_DELAY="7")
    pick, call = rig.pick(), CallState(rate_retries=2)
    await rig.reactions.react(pick, failure_of("429_bare.json"), call)
    assert 4.0 <= pick.limiter.blocked_until - NOW <= 6.0  # 1 × 2², stretched, never shortened
    await rig.reactions.react(pick, failure_of("429_bare.json"), call)
    assert pick.limiter.blocked_until == NOW + 7.0  # 8 s and more: capped
    assert call.rate_retries == 4 and pick.limiter.limits.rpm is None


async def test_per_day_429_puts_the_pair_out_for_every_worker_sharing_the_ledger(db) -> None:
    rig, other = Rig(MongoQuotaLedger(db)), Rig(MongoQuotaLedger(db))
    pick = rig.pick(LITE)
    await rig.reactions.react(pick, failure_of("429_per_day_free_tier.json"), CallState())
    midnight = next_pacific_midnight(NOW)
    assert rig.state.exhausted_until("projA", LITE, NOW) == midnight
    assert pick.limiter.limits.rpd == 20
    assert rig.state.exhausted_until("projA", FLASH, NOW) is None  # the pair, not the project
    assert rig.saves == 1 and rig.stats["429/per_day"] == 1
    # Another worker is refused by the shared day count before sending anything.
    theirs = other.pick(LITE)
    assert not await other.books.admit(theirs, NOW + 1, 10)
    assert other.state.exhausted_until("projA", LITE, NOW + 1) == pytest.approx(midnight)
    assert theirs.limiter.limits.rpd == 20


async def test_limit_zero_drops_the_model_for_that_project_only() -> None:
    rig = Rig()
    model = "gemini-2.0-flash"
    await rig.reactions.react(
        rig.pick(model), failure_of("429_limit_zero_all_metrics.json"), CallState()
    )
    assert rig.state.is_dropped_for_project("projA", model)
    assert not rig.state.is_dropped_for_project("projB", model)
    assert not rig.state.is_model_dropped(model)
    assert rig.saves == 1 and rig.stats["429/limit_zero"] == 1


@pytest.mark.parametrize(
    "body", ["400_api_key_invalid.json", "403_key_leaked.json", "403_unregistered_caller.json"]
)
async def test_a_bad_key_disables_that_key_only(body: str) -> None:
    rig = Rig()
    await rig.reactions.react(rig.pick(), failure_of(body), CallState())
    bad, sibling = KEYS["projA"]
    assert rig.state.disabled_key_reason(bad.fingerprint) == "bad_key"
    assert not rig.state.is_key_disabled(sibling.fingerprint)
    assert rig.saves == 1 and rig.stats == Counter({"errors/bad_key": 1})


async def test_billing_disables_every_key_of_the_project() -> None:
    rig = Rig()
    await rig.reactions.react(
        rig.pick(key=KEYS["projA"][1]), failure_of("402_prepay_credits_depleted.json"), CallState()
    )
    assert all(rig.state.disabled_key_reason(k.fingerprint) == "billing" for k in KEYS["projA"])
    assert not rig.state.is_key_disabled(KEYS["projB"][0].fingerprint)
    assert rig.saves == 1


async def test_a_retired_model_is_dropped_everywhere() -> None:
    rig = Rig()
    failure = failure_of("404_model_not_found.json")
    await rig.reactions.react(rig.pick(failure.model or ""), failure, CallState())
    assert rig.state.is_model_dropped("gemini-1.5-flash")
    assert not rig.state.is_model_dropped(LITE)
    assert rig.saves == 1


@pytest.mark.parametrize(
    ("body", "raised", "reason"),
    [
        ("400_user_location_not_supported.json", EnrichmentUnavailable, "failed_precondition"),
        ("400_unable_to_process_image.json", BadInput, "bad_image"),
    ],
)
async def test_precondition_and_bad_image_raise(body: str, raised: type, reason: str) -> None:
    rig = Rig()
    pick = rig.pick()
    with pytest.raises(raised) as info:
        await rig.reactions.react(pick, failure_of(body), CallState())
    assert info.value.reason == reason
    assert pick.where in info.value.message and KEY_A1 not in info.value.message
    assert rig.saves == 0


async def test_an_invalid_request_is_bad_input_with_its_status() -> None:
    body = {"error": {"code": 400, "message": "Invalid JSON payload", "status": "INVALID_ARGUMENT"}}
    failure = classify(400, body)
    assert failure.kind is FailureKind.INVALID_REQUEST
    rig = Rig()
    with pytest.raises(BadInput) as info:
        await rig.reactions.react(rig.pick(), failure, CallState())
    assert info.value.reason == "invalid_request"
    assert info.value.message.startswith("400: Invalid JSON payload (model ")


async def test_a_timeout_is_retried_once_on_its_model_then_deferred() -> None:
    rig = Rig(GEMINI_TIMEOUT="20", GEMINI_TIMEOUT_RETRY_FACTOR="3", GEMINI_SERVER_ERROR_DEFER="300")
    failure = classify_exception(httpx2.ReadTimeout("read timed out"))
    assert failure is not None and failure.kind is FailureKind.TIMEOUT
    call, pick = CallState(), rig.pick()
    await rig.reactions.react(pick, failure, call)
    assert call.timed_out_on == LITE and rig.stats["timeouts"] == 1
    with pytest.raises(RequestTimedOut) as info:
        await rig.reactions.react(pick, failure, call)
    assert info.value.reason == "timeout"
    assert info.value.next_attempt_at == utc(NOW + 300)
    assert "no answer within 20 s, then 60 s" in info.value.message
    assert rig.stats["timeouts"] == 2 and rig.stats["deferred/timeout"] == 1
    assert rig.waits == []  # no wait: the retry goes at once


@pytest.mark.parametrize("body", ["500_internal.json", "503_overloaded.json"])
async def test_server_errors_back_off_then_skip_the_model(body: str) -> None:
    rig = Rig(GEMINI_SERVER_RETRIES="2", GEMINI_BACKOFF_MAX="1.5")
    call, pick = CallState(), rig.pick()
    for _ in range(3):
        await rig.reactions.react(pick, failure_of(body), call)
    assert rig.waits == [1.0, 1.5]  # 1 s, then 2 s capped by the backoff maximum
    assert call.server_errors == Counter({LITE: 3}) and call.skipped_models == {LITE}
    assert rig.stats == Counter({"errors/server": 3})


async def test_a_transport_error_past_the_call_s_wait_budget_skips_at_once() -> None:
    rig = Rig(GEMINI_MAX_WAIT="5")
    failure = classify_exception(httpx2.ConnectError("connection refused"))
    assert failure is not None and failure.kind is FailureKind.TRANSPORT
    call, pick = CallState(waited=4.5), rig.pick()
    await rig.reactions.react(pick, failure, call)
    assert rig.waits == [] and call.skipped_models == {LITE}
    assert rig.stats == Counter({"errors/transport": 1})
