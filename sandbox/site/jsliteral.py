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


def _emit(value: Any, out: list[str]) -> None:
    if value is UNDEFINED:
        out.append("undefined")
    elif isinstance(value, dict):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            if n:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _emit(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _emit(item, out)
        out.append("]")
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def to_js_literal(value: Any) -> str:
    """Serialize like the real page: JSON text, bare ``undefined``, ``/`` as ``\\u002F``.

    ``/`` only occurs inside string literals in JSON text, so escaping it everywhere
    is exact (and keeps ``</script>`` out of the script element).
    """
    out: list[str] = []
    _emit(value, out)
    return "".join(out).replace("/", "\\u002F")
