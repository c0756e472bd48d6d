"""On/off spider arguments (``-a authors=1``, ``-a include_local=1``): one spelling rule.

``1/true/yes/on`` and ``0/false/no/off`` (any case, or empty for off). Anything else is
a usage error naming the argument, so a typo never quietly means "off".
"""

from __future__ import annotations

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def parse_flag(name: str, value: object) -> bool:
    """The argument's value as a bool; raises ValueError naming ``name=``."""
    text = "" if value is None else str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name}= must be 1 or 0: {str(value)[:50]!r}")
