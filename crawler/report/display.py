"""Text laid out for a terminal by display width: CJK characters take two columns.

``len("面经")`` is 2 but a terminal draws it four columns wide, so tables padded with
``str.ljust`` go crooked as soon as a title is Chinese. :func:`fit` pads and cuts by
``unicodedata.east_asian_width`` (W and F are two columns; combining marks none).
"""

from __future__ import annotations

import unicodedata


def char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal."""
    return sum(char_width(char) for char in text)


def fit(text: str, width: int, *, align: str = "left") -> str:
    """``text`` on one line, cut with "…" or padded with spaces to exactly ``width`` columns."""
    text = " ".join(str(text).split())
    if display_width(text) > width:
        kept, used = [], 0
        for char in text:
            w = char_width(char)
            if used + w > width - 1:
                break
            kept.append(char)
            used += w
        text = "".join(kept) + "…"
    pad = " " * (width - display_width(text))
    return pad + text if align == "right" else text + pad
