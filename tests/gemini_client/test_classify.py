"""classify() over every real error body in tests/data/gemini-errors/."""

from __future__ import annotations

import json

import aiohttp
import httpx2
import pytest
from google.genai import errors as genai_errors

from pipelines.gemini import Failure, FailureKind, classify, classify_exception, key_fingerprint
from pipelines.gemini.errors import blocking_finish_reason, parse_duration
from tests.gemini_client.helpers import BODIES

# file -> (kind, retry_after, quota_id, quota_value, model)
EXPECTED: dict[str, tuple[FailureKind, float | None, str | None, int | None, str | None]] = {
    "400_api_key_invalid.json": (FailureKind.BAD_KEY, None, None, None, None),
    "400_unable_to_process_image.json": (FailureKind.BAD_IMAGE, None, None, None, None),
    "400_user_location_not_supported.json": (FailureKind.PRECONDITION, None, None, None, None),
    "402_prepay_credits_depleted.json": (FailureKind.BILLING, None, None, None, None),
    "403_key_leaked.json": (FailureKind.BAD_KEY, None, None, None, None),
    "403_unregistered_caller.json": (FailureKind.BAD_KEY, None, None, None, None),
    "404_model_not_found.json": (FailureKind.MODEL_NOT_FOUND, None, None, None, "gemini-1.5-flash"),
    "429_bare.json": (FailureKind.PER_MINUTE, None, None, None, None),
    "429_input_tokens_per_minute.json": (
        FailureKind.PER_MINUTE,
        26.0,
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
        250000,
        "gemini-2.5-flash",
    ),
    "429_limit_zero_all_metrics.json": (FailureKind.LIMIT_ZERO, 1.0, None, 0, "gemini-2.0-flash"),
    "429_per_day_free_tier.json": (
        FailureKind.PER_DAY,
        39.0,
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        20,
        "gemini-2.5-flash-lite",
    ),
    "429_per_day_retry_delay_zero.json": (
        FailureKind.PER_DAY,
        0.0,
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        250,
        "gemini-2.5-flash",
    ),
    "500_internal.json": (FailureKind.SERVER, None, None, None, None),
    "503_overloaded.json": (FailureKind.SERVER, None, None, None, None),
}


def _load(name: str) -> dict:
    return json.loads((BODIES / name).read_text())


def test_every_error_body_is_covered() -> None:
    error_files = {p.name for p in BODIES.glob("*.json") if not p.name.startswith("200_")}
    assert error_files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_classify_real_body(name: str) -> None:
    kind, retry_after, quota_id, quota_value, model = EXPECTED[name]
    status = int(name.split("_", 1)[0])
    failure = classify(status, _load(name))
    assert failure.kind is kind
    assert failure.status == status
    assert failure.retry_after == retry_after
    assert failure.quota_id == quota_id
    assert failure.quota_value == quota_value
    assert failure.model == model
    assert failure.message == _load(name)["error"]["message"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_classify_through_the_real_sdk_exception(name: str) -> None:
    """The SDK puts the whole body in APIError.details; classification must agree."""
    status = int(name.split("_", 1)[0])
    body = _load(name)
    exc_type = genai_errors.ClientError if status < 500 else genai_errors.ServerError
    exc = exc_type(status, body, None)
    assert classify_exception(exc) == classify(status, body)


def test_metric_maps_quota_ids_to_limits() -> None:
    assert classify(429, _load("429_per_day_free_tier.json")).metric == "rpd"
    assert classify(429, _load("429_input_tokens_per_minute.json")).metric == "tpm"
    per_minute = Failure(
        FailureKind.PER_MINUTE, quota_id="GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    )
    assert per_minute.metric == "rpm"
    assert classify(429, _load("429_bare.json")).metric is None


def test_per_minute_request_violation_with_retry_delay() -> None:
    body = _load("429_per_day_free_tier.json")
    violation = body["error"]["details"][1]["violations"][0]
    violation["quotaId"] = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    violation["quotaValue"] = "15"
    body["error"]["details"][2]["retryDelay"] = "2s"
    failure = classify(429, body)
    assert (failure.kind, failure.retry_after, failure.quota_value, failure.metric) == (
        FailureKind.PER_MINUTE,
        2.0,
        15,
        "rpm",
    )


def test_limit_zero_from_quota_value_alone() -> None:
    body = _load("429_per_day_free_tier.json")
    body["error"]["details"][1]["violations"][0]["quotaValue"] = "0"
    body["error"]["message"] = "quota exceeded"
    assert classify(429, body).kind is FailureKind.LIMIT_ZERO


def test_limit_zero_is_not_limit_twenty() -> None:
    body = _load("429_per_day_free_tier.json")
    body["error"]["message"] = body["error"]["message"].replace("limit: 20", "limit: 0.5")
    assert classify(429, body).kind is FailureKind.PER_DAY


def test_retry_delay_falls_back_to_message() -> None:
    body = _load("429_input_tokens_per_minute.json")
    del body["error"]["details"][2]
    assert classify(429, body).retry_after == pytest.approx(26.118364291)


def test_depleted_credits_message_under_another_status() -> None:
    body = _load("402_prepay_credits_depleted.json")
    assert classify(429, body).kind is FailureKind.BILLING


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, FailureKind.BAD_KEY),
        (408, FailureKind.SERVER),
        (413, FailureKind.INVALID_REQUEST),
        (504, FailureKind.SERVER),
    ],
)
def test_other_statuses(status: int, kind: FailureKind) -> None:
    assert classify(status, {"error": {"code": status, "message": "x", "status": "X"}}).kind is kind


def test_unstructured_bodies() -> None:
    # The SDK turns a non-JSON error page into {"message": text, "status": reason}.
    assert (
        classify(502, {"message": "<html>Bad Gateway</html>", "status": "Bad Gateway"}).kind
        is FailureKind.SERVER
    )
    assert classify(400, "Unable to process input image.").kind is FailureKind.BAD_IMAGE
    assert classify(429, b"").kind is FailureKind.PER_MINUTE
    assert (
        classify(None, {"error": {"code": 404, "message": "m", "status": "NOT_FOUND"}}).kind
        is FailureKind.MODEL_NOT_FOUND
    )


def test_transport_errors_are_classified_and_other_exceptions_are_not() -> None:
    for exc in (
        httpx2.ConnectTimeout("timed out"),
        httpx2.ConnectError("connection refused"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientConnectionError("reset"),
        aiohttp.ConnectionTimeoutError("connect timed out"),
    ):
        failure = classify_exception(exc)
        assert failure is not None and failure.kind is FailureKind.TRANSPORT, exc
    assert classify_exception(ValueError("bug")) is None


def test_a_timeout_after_sending_is_its_own_kind() -> None:
    """Sent, then no answer in time: the server bills it (not a connection error)."""
    for exc in (TimeoutError(), httpx2.ReadTimeout("timed out"), aiohttp.SocketTimeoutError()):
        failure = classify_exception(exc)
        assert failure is not None and failure.kind is FailureKind.TIMEOUT, exc


def test_secrets_are_redacted_from_messages() -> None:
    secret = "AIzaSyD-this-is-a-fake-key-0123456789ab"
    body = {
        "error": {
            "code": 400,
            "message": f"API key not valid: {secret}",
            "status": "INVALID_ARGUMENT",
        }
    }
    failure = classify(400, body, secrets=[secret])
    assert secret not in failure.message and key_fingerprint(secret) in failure.message
    exc = httpx2.ConnectError(f"failed GET https://h/v1beta/models?key={secret}&pageSize=5")
    transport = classify_exception(exc, secrets=[])
    assert transport is not None and secret not in transport.message


def test_parse_duration() -> None:
    assert parse_duration("39s") == 39.0
    assert parse_duration("0.5s") == 0.5
    assert parse_duration("964.972314ms") == pytest.approx(0.964972314)
    assert parse_duration("2m") == 120.0
    assert parse_duration(3) == 3.0
    assert parse_duration("soon") is None
    assert parse_duration(None) is None


def test_blocking_finish_reasons() -> None:
    assert blocking_finish_reason("SAFETY") and blocking_finish_reason("RECITATION")
    assert not blocking_finish_reason("STOP") and not blocking_finish_reason("MAX_TOKENS")


def test_summary_and_short_message() -> None:
    per_day = classify(429, _load("429_per_day_free_tier.json"))
    assert (
        per_day.summary == "per_day 429 GenerateRequestsPerDayPerProjectPerModel-FreeTier limit 20"
    )
    overloaded = classify(503, _load("503_overloaded.json"))
    assert overloaded.summary == "server 503 The model is overloaded. Please try again later."
    long = Failure(FailureKind.SERVER, message="\n  " + "x" * 500 + "\nsecond line")
    assert len(long.short_message) == 200 and long.short_message.endswith("…")
