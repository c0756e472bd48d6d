"""The one escaping scheme for outside field names (pipelines.mongo.keys)."""

from __future__ import annotations

from pipelines.mongo import escape_key, escape_keys, unescape_key, unescape_keys
from pipelines.storage import sanitize


def test_dollar_dot_and_nul_become_full_width():
    assert escape_key("$where.x\x00") == "＄where．x\ufffd"
    assert escape_key("a\ud800") == "a\ufffd" and escape_key(7) == "7"
    assert escape_key("plain_key") == "plain_key"


def test_escaping_is_reversed_exactly_for_ordinary_keys():
    for key in ("p1/gemini-2.5-flash", "$set", "a.b.c", "100%", "%2E", "中文.键"):
        assert unescape_key(escape_key(key)) == key
    nested = {"a.b": [{"$c": 1}, {"d.e": {"f$": None}}], "g": (1, 2)}
    escaped = escape_keys(nested)
    assert escaped == {"a．b": [{"＄c": 1}, {"d．e": {"f＄": None}}], "g": [1, 2]}
    assert unescape_keys(escaped) == {**nested, "g": [1, 2]}


def test_storage_and_quota_state_use_the_same_scheme():
    """Scraped keys (sanitize) and quota-state keys (escape_keys) come out the same."""
    value = {"m.n": {"$x": 1}}
    assert sanitize(value, 100) == escape_keys(value) == {"m．n": {"＄x": 1}}
