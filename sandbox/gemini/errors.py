"""Error bodies exactly as the real Gemini API sends them.

Every body starts from a real one in ``bodies/`` (copied from the project's captured
fixtures); only the parts that vary per case are filled in: model, quotaId/quotaMetric
(free vs paid tier), quotaValue, the "* Quota exceeded for metric" line and the retry
delay in the message and in ``RetryInfo``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sandbox.gemini.config import Tier

BODIES = Path(__file__).with_name("bodies")

_FREE_REQUESTS = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
_FREE_TOKENS = "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"
# Paid-tier metric and quota names as they appear in users' reports of paid-project 429s.
_PAID = {
    "per_day": (
        "generativelanguage.googleapis.com/generate_requests_per_model_per_day",
        "GenerateRequestsPerDayPerProjectPerModel",
    ),
    "per_minute": (
        "generativelanguage.googleapis.com/generate_requests_per_model",
        "GenerateRequestsPerMinutePerProjectPerModel",
    ),
    "input_tokens": (
        "generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count",
        "GenerateContentPaidTierInputTokensPerModelPerMinute",
    ),
}
_FREE = {
    "per_day": (_FREE_REQUESTS, "GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
    "per_minute": (_FREE_REQUESTS, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
    "input_tokens": (_FREE_TOKENS, "GenerateContentInputTokensPerModelPerMinute-FreeTier"),
}


@dataclass(frozen=True)
class ApiError:
    """An error answer: HTTP status, body, and the short kind used in the request log."""

    status: int
    kind: str
    body: dict[str, Any]


@cache
def _template(name: str) -> dict[str, Any]:
    return json.loads((BODIES / name).read_text(encoding="utf-8"))


def _body(name: str) -> dict[str, Any]:
    return copy.deepcopy(_template(name))


def go_duration(seconds: float) -> str:
    """Format like the service's message: ``39.953659281s``, ``1.029s``, ``964.972314ms``."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        text, unit = f"{seconds * 1000:.6f}", "ms"
    else:
        text, unit = f"{seconds:.9f}", "s"
    return text.rstrip("0").rstrip(".") + unit


def _quota_message(template_message: str, lines: list[str], retry_after: float) -> str:
    head = template_message.split("\n* ", 1)[0]
    return (
        head
        + "".join(f"\n* {line}" for line in lines)
        + (f"\nPlease retry in {go_duration(retry_after)}.")
    )


def quota_exceeded(
    kind: str, *, model: str, limit: int, retry_after: float, tier: Tier, round_up: bool
) -> ApiError:
    """429 for one exceeded quota (``per_day``, ``per_minute`` or ``input_tokens``).

    The per-day body is the real one (quotaValue = the limit as a string). The real
    ``retryDelay`` is the message's delay cut to whole seconds; for per-minute quotas
    ``round_up`` makes it the whole seconds after which the window really has a free
    slot, so a client that waits exactly ``retryDelay`` is served.
    """
    name = (
        "429_input_tokens_per_minute.json"
        if kind == "input_tokens"
        else ("429_per_day_free_tier.json")
    )
    body = _body(name)
    metric, quota_id = (_PAID if tier == "paid" else _FREE)[kind]
    error = body["error"]
    error["message"] = _quota_message(
        error["message"],
        [f"Quota exceeded for metric: {metric}, limit: {limit}, model: {model}"],
        retry_after,
    )
    for detail in error["details"]:
        if detail["@type"].endswith("QuotaFailure"):
            violation = detail["violations"][0]
            violation.update(quotaMetric=metric, quotaId=quota_id, quotaValue=str(limit))
            violation["quotaDimensions"]["model"] = model
        elif detail["@type"].endswith("RetryInfo"):
            whole = math.ceil(retry_after) if round_up else math.floor(retry_after)
            detail["retryDelay"] = f"{max(whole, 0)}s"
    return ApiError(429, f"quota_{kind}", body)


def limit_zero(*, model: str, retry_after: float) -> ApiError:
    """429 for a model the project has no quota for at all (every limit is 0)."""
    body = _body("429_limit_zero_all_metrics.json")
    error = body["error"]
    error["message"] = _quota_message(
        error["message"],
        [
            f"Quota exceeded for metric: {_FREE_REQUESTS}, limit: 0, model: {model}",
            f"Quota exceeded for metric: {_FREE_REQUESTS}, limit: 0, model: {model}",
            f"Quota exceeded for metric: {_FREE_TOKENS}, limit: 0, model: {model}",
        ],
        retry_after,
    )
    for detail in error["details"]:
        if detail["@type"].endswith("QuotaFailure"):
            for violation in detail["violations"]:
                violation["quotaDimensions"]["model"] = model
        elif detail["@type"].endswith("RetryInfo"):
            detail["retryDelay"] = f"{math.floor(max(retry_after, 0))}s"
    return ApiError(429, "quota_limit_zero", body)


# kind -> (status, body file) for the bodies that never vary.
FIXED = {
    "quota_bare": (429, "429_bare.json"),
    "credits_depleted": (402, "402_prepay_credits_depleted.json"),
    "api_key_invalid": (400, "400_api_key_invalid.json"),
    "user_location": (400, "400_user_location_not_supported.json"),
    "bad_image": (400, "400_unable_to_process_image.json"),
    "key_leaked": (403, "403_key_leaked.json"),
    "unregistered_caller": (403, "403_unregistered_caller.json"),
    "internal": (500, "500_internal.json"),
    "overloaded": (503, "503_overloaded.json"),
    "deadline": (504, "504_deadline_exceeded.json"),
}


def fixed(kind: str) -> ApiError:
    """One of the :data:`FIXED` bodies, verbatim."""
    status, name = FIXED[kind]
    return ApiError(status, kind, _body(name))


def model_not_found(model: str, *, api_version: str, method: str) -> ApiError:
    """404 for an unknown or retired model, in the real wording."""
    body = _body("404_model_not_found.json")
    body["error"]["message"] = (
        f"models/{model} is not found for API version {api_version}, or is not supported "
        f"for {method}. Call ListModels to see the list of available models and their "
        "supported methods."
    )
    return ApiError(404, "model_not_found", body)


def invalid_argument(message: str, kind: str = "invalid_argument") -> ApiError:
    """400 INVALID_ARGUMENT with a message (malformed request, payload too large …)."""
    return ApiError(
        400, kind, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    )
