"""Interaction counts as the site shows them ("300", "10+", "1k+", "1.2万") → integers."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_MULTIPLIERS = {
    "": 1,
    "k": 1_000,
    "千": 1_000,
    "w": 10_000,
    "万": 10_000,
    "亿": 100_000_000,
}
_COUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([kKwW千万亿]?)\s*\+?")


def parse_count(text: str | int | float | None) -> int | None:
    """The count as an integer: the lower bound for "10+"-style forms.

    ``"300"``→300, ``"10+"``→10, ``"1k+"``→1000, ``"1w+"``→10000, ``"1.2万"``→12000,
    ``"3.4亿"``→340000000, ``"1,234"``→1234; ints pass through. Anything that is not a
    count (``""``, ``None``, ``"赞"``, a bool, a negative number) is None.
    """
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text if text >= 0 else None
    if isinstance(text, float):
        return int(text) if math.isfinite(text) and text >= 0 else None
    match = _COUNT.fullmatch(text.strip().replace(",", ""))
    if match is None:
        return None
    number, unit = match.groups()
    # Decimal, not float: "1.15万" must be 11500, not 11499.
    return int(Decimal(number) * _MULTIPLIERS[unit.lower()])
