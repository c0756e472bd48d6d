"""On/off spider arguments: one spelling rule, and a typo is an error naming the argument."""

from __future__ import annotations

import pytest

from crawler.spiders.flags import parse_flag


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("0", False), ("off", False), ("No", False),
     ("1", True), (" true ", True), ("YES", True), ("on", True), (1, True)],
)  # fmt: skip
def test_spellings(value: object, expected: bool) -> None:
    assert parse_flag("include_local", value) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "y", "ja"])
def test_anything_else_names_the_argument(value: str) -> None:
    with pytest.raises(ValueError, match=rf"^include_local= must be 1 or 0: '{value}'$"):
        parse_flag("include_local", value)
