"""Counts as the site writes them → integers (lower bounds for "+" forms)."""

from __future__ import annotations

import pytest

from crawler.parsing.counts import parse_count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300", 300),
        ("0", 0),
        ("10+", 10),
        ("1k+", 1000),
        ("1K", 1000),
        ("1.5k", 1500),
        ("2千", 2000),
        ("1w+", 10000),
        ("1W", 10000),
        ("1.2万", 12000),
        ("1.15万", 11500),  # exact decimal arithmetic, not 11499
        ("10万+", 100000),
        ("3.4亿", 340_000_000),
        (" 46 ", 46),
        ("1,234", 1234),
        ("1.2 万", 12000),
        (300, 300),
        (0, 0),
        (12.0, 12),
    ],
)
def test_count_forms(text: str | int | float, expected: int) -> None:
    result = parse_count(text)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        None,
        "赞",
        "收藏",
        "评论",
        "abc",
        "1.2.3",
        "k",
        "+",
        "-5",
        -5,
        True,
        False,
        float("nan"),
        float("inf"),
        "1万万",
    ],
)
def test_not_counts(text: object) -> None:
    assert parse_count(text) is None  # type: ignore[arg-type]
