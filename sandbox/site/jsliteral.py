"""Writing ``window.__INITIAL_STATE__`` the way the real site does.

The real page carries a JavaScript object literal, not JSON: values that are
``undefined`` in the server's store are written as a bare ``undefined`` and every ``/``
inside strings is written as ``\\u002F``. ``UNDEFINED`` marks such values; a string
whose text is "undefined" stays a quoted string.
"""

from __future__ import annotations

import json
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
    return text.replace(_UNDEFINED_JSON, "undefined").replace("/", "\\u002F")
