"""Writing ``window.__INITIAL_STATE__`` the way the real site does.

The real page carries a JavaScript object literal, not JSON: values that are
``undefined`` in the server's store are written as a bare ``undefined`` and every ``/``
inside strings is written as ``\\u002F``. ``UNDEFINED`` marks such values; a string
whose text is "undefined" stays a quoted string.
"""

from __future__ import annotations

import json
import re
from typing import Any


class _Undefined:
    """Singleton marker for a JavaScript ``undefined`` value."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


# UNDEFINED is written as this string first, then its JSON text is replaced by a bare
# ``undefined``; the NULs keep it from colliding with any text of the dataset.
_UNDEFINED_TEXT = "\x00js-undefined\x00"
_UNDEFINED_JSON = json.dumps(_UNDEFINED_TEXT)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _undefined_as_text(value: Any) -> str:
    if value is UNDEFINED:
        return _UNDEFINED_TEXT
    raise TypeError(f"{type(value).__name__} is not serializable to a JavaScript literal")


def to_js_literal(value: Any) -> str:
    """Serialize like the real page: JSON text, bare ``undefined``, ``/`` as ``\\u002F``.

    ``/`` only occurs inside string literals in JSON text, so escaping it everywhere
    is exact (and keeps ``</script>`` out of the script element). One ``json.dumps``
    call: the site renders a page per request, and a per-value encoder cost it about
    a millisecond a page.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_undefined_as_text)
    text = text.replace(_UNDEFINED_JSON, "undefined").replace("/", "\\u002F")
    return escape_lone_surrogates(text)


def escape_lone_surrogates(json_text: str) -> str:
    """JSON text with each lone surrogate (half an emoji, only in a hostile note's
    strings) written as its ``\\uXXXX`` escape, as the real site's serializer does."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
