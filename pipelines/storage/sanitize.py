"""Sanitizing scraped data into a BSON-safe copy: keys escaped, text repaired, sizes capped.

Keys go through the one escaping scheme (:func:`pipelines.mongo.keys.escape_key`),
strings through :func:`crawler.core.text.clean_text` and are cut at ``max_chars``
(``…[truncated]`` appended, the dotted path recorded). Plain scalars are kept without
recursing: most values of a note are such scalars (see :func:`_kept`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from itemadapter import ItemAdapter

from crawler.core.text import clean_text
from pipelines.mongo.keys import escape_key

_INT64 = 1 << 63
TRUNCATION_MARK = "…[truncated]"


# Where a value sits, built only as far as needed: (parent, key) links, joined with
# dots when a string has to be cut (see _dotted); a path string per value cost more
# than the rest of the sanitizing.
_Where = tuple[Any, str | int] | str | None


def _dotted(where: _Where) -> str:
    parts: list[str] = []
    while isinstance(where, tuple):
        where, key = where
        parts.append(str(key))
    if where:
        parts.append(where)
    return ".".join(reversed(parts)) or "<value>"


def sanitize(value: Any, max_chars: int, path: str = "", truncated: list[str] | None = None) -> Any:
    """A BSON-safe copy of scraped data.

    Keys are escaped (:func:`escape_key`), strings repaired (:func:`clean_text`) and
    cut at ``max_chars`` characters (``…[truncated]`` appended, the dotted path
    recorded in ``truncated``), integers beyond int64 kept as decimal strings, sets
    sorted into lists, dataclasses and other items turned into dicts, unknown types
    stringified.
    """
    return _clean(value, max_chars, path or None, [] if truncated is None else truncated)


_AS_IS = frozenset({type(None), bool, float, datetime})


def _kept(value: Any, max_chars: int) -> bool:
    """Whether a scalar can be stored as it is. :func:`_clean` asks first, and its loops
    ask before recursing: most values of a note are such scalars, and the check costs a
    fraction of a recursive call."""
    kind = type(value)
    return (
        kind in _AS_IS
        or (kind is int and -_INT64 <= value < _INT64)
        or (
            kind is str
            and len(value) <= max_chars
            and (value.isascii() or clean_text(value) is value)
        )
    )


def _clean(value: Any, max_chars: int, where: _Where, truncated: list[str]) -> Any:
    if _kept(value, max_chars):
        return value
    kind = type(value)
    if kind is str:  # to repair or to cut
        value = clean_text(value)
        if len(value) > max_chars:
            truncated.append(_dotted(where))
            value = value[:max_chars] + TRUNCATION_MARK
        return value
    if kind is int:  # beyond int64
        return str(value)
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        out = {}
        for k, v in value.items():
            key = escape_key(k)
            out[key] = v if _kept(v, max_chars) else _clean(v, max_chars, (where, key), truncated)
        return out
    if kind is list or isinstance(value, list | tuple):
        return [
            v if _kept(v, max_chars) else _clean(v, max_chars, (where, i), truncated)
            for i, v in enumerate(value)
        ]
    if isinstance(value, str):  # str subclasses
        return _clean(str(value), max_chars, where, truncated)
    if isinstance(value, bool | float | datetime):
        return value
    if isinstance(value, int):
        return _clean(int(value), max_chars, where, truncated)
    if isinstance(value, set | frozenset):
        return _clean(sorted(value, key=str), max_chars, where, truncated)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Direct field access: ItemAdapter.asdict() costs ~3× the whole sanitizing.
        data = {name: getattr(value, name) for name in _field_names(kind)}
        return _clean(data, max_chars, where, truncated)
    if ItemAdapter.is_item(value):
        return _clean(ItemAdapter(value).asdict(), max_chars, where, truncated)
    return _clean(str(value), max_chars, where, truncated)


@functools.lru_cache(maxsize=256)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))
