"""UTC time helpers.

BSON dates keep milliseconds only, so every time the project writes is cut to
milliseconds: a value read back from Mongo or the spool then compares equal to the one
written (the spool replay's deduplication relies on it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Clock = Callable[[], datetime]


def as_utc(value: datetime) -> datetime:
    """Aware UTC, cut to milliseconds (a naive value is taken as UTC, as pymongo returns)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    """Aware UTC now, cut to milliseconds."""
    return as_utc(datetime.now(UTC))


def aware(value: Any) -> Any:
    """A naive datetime (as pymongo reads one back) as aware UTC; anything else as it is."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
