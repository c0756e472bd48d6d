"""How MongoDB failures are classified and named (stats keys, log lines)."""

from __future__ import annotations

import re

from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    PyMongoError,
    ServerSelectionTimeoutError,
)

TRANSIENT_ERRORS = (AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError, ConnectionFailure)
_NON_WORD = re.compile(r"[^0-9a-z]+")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same command later may succeed (network, failover)."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError")


def snake_case(name: str) -> str:
    """``DocumentTooLarge`` → ``document_too_large`` (stats key parts)."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return _NON_WORD.sub("_", name).strip("_") or "unknown"


def error_reason(exc: BaseException) -> str:
    """``ServerSelectionTimeoutError`` → ``server_selection_timeout_error``."""
    return snake_case(type(exc).__name__)
