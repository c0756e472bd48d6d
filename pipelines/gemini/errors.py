"""Classification of every Gemini failure, and the exceptions the client raises.

``classify(status, body)`` is a pure function from an HTTP status and the error body
(the whole ``{"error": {...}}`` document, as the SDK exposes it in
``APIError.details``) to a ``Failure`` that tells the client what to do. The table it
implements is tests/data/gemini-errors/README.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from google.genai import errors as genai_errors

from .keys import redact


class FailureKind(StrEnum):
    """What went wrong, named by what the client does about it."""

    PER_MINUTE = "per_minute"  # wait max(retryDelay, backoff), same project and model
    PER_DAY = "per_day"  # (project, model) out until the next Pacific midnight
    LIMIT_ZERO = "limit_zero"  # the project has no quota for the model: drop it there
    BAD_KEY = "bad_key"  # invalid / leaked / denied key: disable the key
    BILLING = "billing"  # prepayment credits depleted: disable the project's keys
    MODEL_NOT_FOUND = "model_not_found"  # retired or unknown: drop the model everywhere
    PRECONDITION = "failed_precondition"  # e.g. user location: stop enrichment
    BAD_IMAGE = "bad_image"  # the item's image: the caller re-encodes or drops it
    INVALID_REQUEST = "invalid_request"  # other 4xx: the request itself is at fault
    SERVER = "server"  # 5xx: bounded backoff, then the next model
    TIMEOUT = "timeout"  # no answer in time: billed anyway; one longer retry, then defer
    TRANSPORT = "transport"  # connection error: like SERVER

    @property
    def is_quota(self) -> bool:
        return self in (FailureKind.PER_MINUTE, FailureKind.PER_DAY, FailureKind.LIMIT_ZERO)


@dataclass(frozen=True)
class Failure:
    """A classified failure. ``message`` is already free of secrets."""

    kind: FailureKind
    status: int | None = None
    retry_after: float | None = None
    quota_id: str | None = None
    quota_value: int | None = None
    model: str | None = None
    message: str = ""

    @property
    def short_message(self) -> str:
        """First line of the message, at most 200 characters (for logs and exceptions)."""
        line = next((ln.strip() for ln in self.message.splitlines() if ln.strip()), "")
        return line if len(line) <= 200 else line[:199] + "…"

    @property
    def summary(self) -> str:
        """``kind status quota_id limit N``: what a deferral reason needs, without prose."""
        parts = [str(self.kind)]
        if self.status is not None:
            parts.append(str(self.status))
        if self.quota_id:
            parts.append(self.quota_id)
        if self.quota_value is not None:
            parts.append(f"limit {self.quota_value}")
        if not self.kind.is_quota and self.short_message:
            parts.append(self.short_message)
        return " ".join(parts)

    @property
    def metric(self) -> str | None:
        """Which local limit the quota violation maps to: ``rpm``, ``tpm``, ``rpd`` or None."""
        if not self.quota_id:
            return None
        if "PerDay" in self.quota_id:
            return "rpd"
        if "InputTokens" in self.quota_id:
            return "tpm"
        if "PerMinute" in self.quota_id:
            return "rpm"
        return None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)
_LIMIT_ZERO = re.compile(r"\blimit:\s*0(?![\d.])")
_LIMIT_VALUE = re.compile(r"\blimit:\s*(\d+)")
_MESSAGE_MODEL = re.compile(r"\bmodel:\s*([\w.\-]+)")
_NOT_FOUND_MODEL = re.compile(r"models/([\w.\-]+) is not found")
_BLOCKING_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "LANGUAGE",
        "MODEL_ARMOR",
    }
)


def parse_duration(text: object) -> float | None:
    """Seconds of a protobuf JSON Duration (``"39s"``, ``"0.5s"``) or ``"964.97ms"``."""
    if isinstance(text, int | float):
        return float(text)
    if not isinstance(text, str):
        return None
    match = _DURATION.match(text)
    if not match:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _error_object(body: Any) -> Mapping[str, Any]:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {"message": body}
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, Mapping):
        return {}
    inner = body.get("error")
    return inner if isinstance(inner, Mapping) else body


def _details(err: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    details = err.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, Mapping) and str(d.get("@type", "")).endswith(kind)]


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def classify(status: int | None, body: Any, *, secrets: Iterable[str] = ()) -> Failure:
    """Classify an HTTP error answer of the Gemini API (see module docstring)."""
    err = _error_object(body)
    code = status if status is not None else _int_or_none(err.get("code"))
    rpc_status = str(err.get("status") or "")
    message = redact(str(err.get("message") or ""), secrets)
    lowered = message.lower()

    violations = [
        v
        for qf in _details(err, "QuotaFailure")
        for v in qf.get("violations", [])
        if isinstance(v, Mapping)
    ]
    retry_after = next(
        (
            d
            for d in (parse_duration(r.get("retryDelay")) for r in _details(err, "RetryInfo"))
            if d is not None
        ),
        None,
    )
    if retry_after is None and (m := _RETRY_IN.search(message)):
        retry_after = float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()]
    reasons = {str(d.get("reason")) for d in _details(err, "ErrorInfo")}
    model = next(
        (
            str(v["quotaDimensions"]["model"])
            for v in violations
            if isinstance(v.get("quotaDimensions"), Mapping) and v["quotaDimensions"].get("model")
        ),
        None,
    )
    if model is None and (m := _MESSAGE_MODEL.search(message) or _NOT_FOUND_MODEL.search(message)):
        model = m.group(1)

    def failure(kind: FailureKind, **extra: Any) -> Failure:
        return Failure(kind, code, retry_after, model=model, message=message, **extra)

    if code == 402 or "prepayment credits are depleted" in lowered:
        return failure(FailureKind.BILLING)
    if rpc_status == "FAILED_PRECONDITION":
        return failure(FailureKind.PRECONDITION)
    if code in (401, 403) or "API_KEY_INVALID" in reasons or "api key not valid" in lowered:
        return failure(FailureKind.BAD_KEY)
    if code == 429 or (code is None and rpc_status == "RESOURCE_EXHAUSTED"):
        return _classify_quota(violations, message, failure)
    if code == 404:
        return failure(FailureKind.MODEL_NOT_FOUND)
    if code == 400 and "unable to process input image" in lowered:
        return failure(FailureKind.BAD_IMAGE)
    if code is not None and 400 <= code < 500 and code not in (408, 499):
        return failure(FailureKind.INVALID_REQUEST)
    return failure(FailureKind.SERVER)


def _classify_quota(violations: list[Mapping[str, Any]], message: str, failure: Any) -> Failure:
    values = [_int_or_none(v.get("quotaValue")) for v in violations]
    if 0 in values or _LIMIT_ZERO.search(message):
        return failure(FailureKind.LIMIT_ZERO, quota_value=0)
    message_limit = _LIMIT_VALUE.search(message)
    fallback_value = int(message_limit.group(1)) if message_limit else None
    for violation, value in zip(violations, values, strict=True):
        if "PerDay" in str(violation.get("quotaId", "")):
            return failure(
                FailureKind.PER_DAY,
                quota_id=str(violation["quotaId"]),
                quota_value=value if value is not None else fallback_value,
            )
    if violations:
        first = violations[0]
        value = values[0] if values[0] is not None else fallback_value
        return failure(
            FailureKind.PER_MINUTE,
            quota_id=str(first.get("quotaId") or "") or None,
            quota_value=value,
        )
    return failure(FailureKind.PER_MINUTE)


def _transport_error_types() -> tuple[tuple[type[BaseException], ...], ...]:
    """(never reached the server, sent but unanswered in time, any transport failure)
    exception types of the HTTP stacks the SDK runs on.

    Only a timeout after the request went out is a spent request: a connect or pool
    timeout is a connection error. aiohttp's total timeout is a bare ``TimeoutError``.
    """
    unsent: list[type[BaseException]] = []
    unanswered: list[type[BaseException]] = [TimeoutError]
    transport: list[type[BaseException]] = [TimeoutError, ConnectionError]
    try:
        import httpx2

        unsent += [httpx2.ConnectTimeout, httpx2.PoolTimeout]
        unanswered.append(httpx2.ReadTimeout)
        transport.append(httpx2.TransportError)
    except ImportError:
        pass
    try:
        import aiohttp

        unsent.append(aiohttp.ConnectionTimeoutError)
        transport.append(aiohttp.ClientError)
    except ImportError:
        pass
    return tuple(unsent), tuple(unanswered), tuple(transport)


UNSENT_ERRORS, TIMEOUT_ERRORS, TRANSPORT_ERRORS = _transport_error_types()


def classify_exception(exc: BaseException, *, secrets: Iterable[str] = ()) -> Failure | None:
    """Classify an exception from an SDK call; None if it is not an API/transport failure."""
    if isinstance(exc, genai_errors.APIError):
        return classify(exc.code, exc.details, secrets=secrets)
    if isinstance(exc, TRANSPORT_ERRORS):
        detail = redact(str(exc), secrets)
        text = type(exc).__name__ + (f": {detail}" if detail else "")
        timed_out = isinstance(exc, TIMEOUT_ERRORS) and not isinstance(exc, UNSENT_ERRORS)
        kind = FailureKind.TIMEOUT if timed_out else FailureKind.TRANSPORT
        return Failure(kind, message=text)
    return None


def blocking_finish_reason(name: str | None) -> bool:
    """True for finish reasons that mean the output was withheld (SAFETY, RECITATION …)."""
    return name in _BLOCKING_FINISH_REASONS


class GeminiError(Exception):
    """Base of the client's exceptions: ``reason`` is a short snake_case key for stats
    and for the item's ``enrichment.reason``; ``message`` says more (never a secret).

    ``requests_spent``: the ``generateContent`` requests the failed call sent (429s and
    timed-out ones included), set by ``GeminiClient.generate`` so the caller can record
    the spend on the note.
    """

    requests_spent: int = 0

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}" if message else reason)


class QuotaDeferred(GeminiError):
    """Nothing can serve the request now; try again at ``next_attempt_at`` (aware, UTC)."""

    def __init__(self, reason: str, next_attempt_at: datetime, message: str = "") -> None:
        self.next_attempt_at = next_attempt_at
        super().__init__(reason, message)


class BadInput(GeminiError):
    """The request's input was refused (bad image 400): re-encode or drop, retry once."""


class ContentBlocked(GeminiError):
    """The prompt or the answer was blocked (SAFETY, RECITATION, prompt feedback)."""


class TruncatedOutput(GeminiError):
    """MAX_TOKENS, or no parsable structured output: retry smaller / without thinking."""


class RequestTimedOut(QuotaDeferred):
    """No answer within the timeout, twice (the second try had a longer one): the server
    is slow now. Reason ``timeout``; deferred like a quota wait, not tried on other models."""


class EmptyAnswer(GeminiError):
    """A 200 answer without candidates and without a block reason, twice in a row (reason
    ``no_candidates``). Not a content block: nothing says the note is at fault."""


class SendingStopped(GeminiError):
    """The caller asked for no more requests (its run is stopping: an answer arriving
    after the process ends would be paid for and lost), so the call ended before its
    next request. Reason ``run_stopping``; ``requests_spent`` counts the tries of the
    call that went out before."""


class EnrichmentUnavailable(GeminiError):
    """Gemini cannot be used at all this run (FAILED_PRECONDITION, no usable key or model)."""
