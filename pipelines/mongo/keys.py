"""The one escaping scheme for field names that come from outside (scraped data, the
Gemini client's quota-state keys): MongoDB refuses ``$``-prefixed names and reads ``.``
as a path separator, so both become their full-width forms.

``$`` → ``＄`` (U+FF04), ``.`` → ``．`` (U+FF0E), NUL → U+FFFD; lone surrogates are
repaired first (:func:`crawler.core.text.clean_text`). :func:`unescape_key` turns the
full-width forms back, which restores any key that did not already hold them (and had
no NUL). This is what stored notes have always used; it is not URI or credential
handling (see :mod:`pipelines.mongo.settings`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from crawler.core.text import clean_text

_ESCAPES = str.maketrans({"$": "＄", ".": "．", "\x00": "\ufffd"})
_UNESCAPES = str.maketrans({"＄": "$", "．": "."})


@functools.lru_cache(maxsize=4096)  # the same few dozen field names, note after note
def escape_key(key: Any) -> str:
    """A field name MongoDB accepts: ``$``/``.``/NUL become ＄/．/U+FFFD."""
    return clean_text(str(key)).translate(_ESCAPES)


def unescape_key(key: str) -> str:
    """The name :func:`escape_key` was given (for keys without ＄/．/NUL of their own)."""
    return key.translate(_UNESCAPES)


def _map_keys(value: Any, fn: Callable[[Any], str]) -> Any:
    if isinstance(value, Mapping):
        return {fn(k): _map_keys(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_keys(v, fn) for v in value]
    return value


def escape_keys(value: Any) -> Any:
    """A copy of ``value`` with every mapping key escaped, at any depth."""
    return _map_keys(value, escape_key)


def unescape_keys(value: Any) -> Any:
    """The inverse of :func:`escape_keys`."""
    return _map_keys(value, lambda k: unescape_key(str(k)))
