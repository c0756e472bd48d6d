"""Typed readers for the loose values of API answers and page states.

Shared by the listing, note, comment and profile parsers. Each reader either returns
the value in the type the item wants (None when absent) or raises the error class it
is given, naming the field and what was found: a dict where text was expected is a
wrong shape, not something to stringify. Ids must look like ids (``SAFE_ID``): a
hostile id (``$gt``, ``a.b``, 10 KB) never reaches a stored record or a Mongo filter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from crawler.core.items import CountText
from crawler.core.text import clean_text
from crawler.core.timeutil import as_utc
from crawler.parsing.counts import parse_count
from crawler.parsing.errors import ApiError, ParseError, ResponseMalformed
from crawler.parsing.signals import SIGNATURE_STATUS, error_for_code

SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
MAX_COUNT_CHARS = 32  # "1.2万", "10万+", "1,234,567": anything longer is no count
MAX_URL_CHARS = 2048  # a longer "URL" (avatar, picture, icon) is not kept
MAX_INT64 = 2**63 - 1  # what BSON can hold
# Epoch milliseconds: this range is 2001-09-09 .. 2286-11-20.
_MS_RANGE = (10**12, 10**13)


def load_answer(
    api_json: Mapping[str, Any] | str | bytes, label: str, *, http_status: int | None = None
) -> Mapping[str, Any]:
    """The API answer as a mapping whose ``code`` is 0.

    Raises ``ResponseMalformed`` (not JSON, truncated, not an object, a non-number
    code), the typed error of a ``code != 0`` answer (``crawler.parsing.signals``), or
    ``ApiError`` for ``success: false`` without a code. Code -1 is a rejected signature
    only on an HTTP 406: with another known ``http_status`` it is an ``ApiError``.
    """
    if isinstance(api_json, str | bytes | bytearray):
        try:
            api_json = json.loads(api_json)
        except (ValueError, RecursionError) as exc:
            raise ResponseMalformed(f"{label} is not JSON: {str(exc)[:100]}") from None
    if not isinstance(api_json, Mapping):
        raise ResponseMalformed(f"{label} is a {type(api_json).__name__}, not an object")
    code = api_json.get("code")
    if code is not None and code != 0:
        if not isinstance(code, int) or isinstance(code, bool):
            raise ResponseMalformed(f"{label}: code is {str(code)[:40]!r}, not a number")
        if code == -1 and http_status is not None and http_status != SIGNATURE_STATUS:
            message = str(api_json.get("msg"))[:100]
            raise ApiError(f"{label}: HTTP {http_status}, code -1 msg={message!r}", code=code)
        raise error_for_code(code, api_json.get("msg"), label)
    if code is None and api_json.get("success") is False:
        raise ApiError(f"{label}: success=false, msg={str(api_json.get('msg'))[:100]!r}")
    return api_json


def data_object(answer: Mapping[str, Any], label: str) -> Mapping[str, Any]:
    """``answer["data"]`` when it is an object, else ``ResponseMalformed``."""
    data = answer.get("data")
    if not isinstance(data, Mapping):
        raise ResponseMalformed(
            f"{label} has no data object (data is {type(data).__name__}; keys: {keys_of(answer)})"
        )
    return data


@lru_cache(maxsize=256)
def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


def get_field(obj: Mapping[str, Any], camel: str) -> Any:
    """``obj[camel]``, else ``obj[snake_case(camel)]``: page state and API read alike."""
    value = obj.get(camel)
    return value if value is not None else obj.get(_snake(camel))


def text_value(value: Any, what: str, error: type[ParseError]) -> str | None:
    """Text (cleaned): a str as is, a number as its digits, None as None; else ``error``."""
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise error(f"{what} is a {type(value).__name__}, not text")


def capped_text(
    value: Any, what: str, error: type[ParseError], limit: int
) -> tuple[str | None, bool]:
    """:func:`text_value` cut to ``limit`` characters, and whether it was cut."""
    text = text_value(value, what, error)
    if text is not None and len(text) > limit:
        return text[:limit], True
    return text, False


def id_value(value: Any, what: str, error: type[ParseError]) -> str | None:
    """An id (``SAFE_ID``), None when absent or empty; ``error`` for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and SAFE_ID.fullmatch(value):
        return value
    shown = repr(value[:40]) if isinstance(value, str) else f"a {type(value).__name__}"
    raise error(f"{what} is {shown}, not an id")


def safe_id(value: Any) -> str | None:
    """The value when it is an id, else None (for optional ids inside an entry)."""
    return value if isinstance(value, str) and SAFE_ID.fullmatch(value) else None


def url_value(value: Any) -> str | None:
    """A URL-sized non-empty string, else None."""
    return value if isinstance(value, str) and 0 < len(value) <= MAX_URL_CHARS else None


def int_value(value: Any) -> int | None:
    """An int from an int, an integral float or a digit string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -MAX_INT64 <= value <= MAX_INT64 else None
    if isinstance(value, float) and value.is_integer():
        return int_value(int(value))
    if isinstance(value, str) and 0 < len(value) <= 19 and value.lstrip("-").isdigit():
        return int_value(int(value))
    return None


def datetime_ms(value: Any) -> datetime | None:
    """Aware UTC time from epoch milliseconds (None outside 2001..2286)."""
    milliseconds = int_value(value)
    if milliseconds is None or not _MS_RANGE[0] <= milliseconds < _MS_RANGE[1]:
        return None
    return as_utc(datetime.fromtimestamp(milliseconds / 1000, tz=UTC))


def count_text(value: Any, what: str, error: type[ParseError]) -> CountText:
    """A count and its raw text; the value is None for text that is no count."""
    raw = text_value(value, what, error)
    if raw is None:
        return CountText()
    if len(raw) > MAX_COUNT_CHARS:
        return CountText(value=None, raw=raw[:MAX_COUNT_CHARS])
    number = parse_count(value if isinstance(value, int) else raw)
    return CountText(value=number if number is not None and number <= MAX_INT64 else None, raw=raw)


def list_value(value: Any, what: str, error: type[ParseError]) -> list[Any]:
    """A list (None → empty); ``error`` for any other type."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise error(f"{what} is a {type(value).__name__}, not a list")


def mapping_value(value: Any, what: str, error: type[ParseError]) -> Mapping[str, Any] | None:
    """A mapping (None stays None); ``error`` for any other type."""
    if value is None or isinstance(value, Mapping):
        return value
    raise error(f"{what} is a {type(value).__name__}, not an object")


def keys_of(mapping: Mapping[Any, Any], limit: int = 8) -> str:
    """The first keys of a mapping for a message (each cut to 40 characters)."""
    keys = [str(key)[:40] for key in list(mapping)[: limit + 1]]
    shown = ", ".join(keys[:limit])
    return shown + (", …" if len(keys) > limit else "") if keys else "none"
