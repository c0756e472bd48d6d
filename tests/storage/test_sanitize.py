"""Sanitizing scraped data: text repair, key escaping, size caps, odd types."""

from __future__ import annotations

from crawler.core.text import clean_text
from pipelines.mongo import escape_key
from pipelines.storage import (
    TRUNCATION_MARK,
    sanitize,
)
from tests.factories import T0


def test_repair_and_escape():
    assert clean_text("ok 中文") == "ok 中文"
    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_text("\ud83d\ude00") == "😀"  # a split pair is joined, not replaced
    assert escape_key("$where.x\x00") == "＄where．x\ufffd"


def test_sanitize():
    truncated: list[str] = []
    value = {
        "a.b": ["x" * 12, {"$k": "y"}],
        "big": 1 << 70,
        "set": {"b", "a"},
        "when": T0,
        "n": None,
        "f": 1.5,
        "s": ["ok", "a\ud800b", -(1 << 64), True],
        "t": "z\udfff",
    }
    out = sanitize(value, 10, "", truncated)
    assert out == {
        "a．b": ["x" * 10 + TRUNCATION_MARK, {"＄k": "y"}],
        "big": str(1 << 70),
        "set": ["a", "b"],
        "when": T0,
        "n": None,
        "f": 1.5,
        "s": ["ok", "a\ufffdb", str(-(1 << 64)), True],
        "t": "z\ufffd",
    }
    assert truncated == ["a．b.0"]
