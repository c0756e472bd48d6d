"""The token-aware JS literal parser: bare ``undefined`` only, JS escapes, exact positions."""

from __future__ import annotations

import json
import random

import pytest

from crawler.parsing.errors import StateMalformed
from crawler.parsing.jsliteral import parse_js_literal


def test_bare_undefined_becomes_none_but_the_word_in_strings_survives() -> None:
    text = (
        '{"title":"undefined behaviour of undefinedness","quoted":"\\"undefined\\"",'
        '"plain":"undefined","v":undefined,"list":[undefined,1,undefined],'
        '"nested":{"x":undefined},"undefined":"key named undefined"}'
    )
    assert parse_js_literal(text) == {
        "title": "undefined behaviour of undefinedness",
        "quoted": '"undefined"',
        "plain": "undefined",
        "v": None,
        "list": [None, 1, None],
        "nested": {"x": None},
        "undefined": "key named undefined",
    }


def test_undefined_with_whitespace_and_newlines_around() -> None:
    assert parse_js_literal('{\n  "a": undefined ,\n  "b":\tundefined\n}') == {"a": None, "b": None}


def test_strings_with_escaped_quotes_and_backslashes_keep_the_scanner_in_sync() -> None:
    # A string ending in an escaped backslash, then a bare undefined right after.
    text = r'{"a":"C:\\dir\\","b":undefined,"c":"say \"undefined\" twice: undefined"}'
    assert parse_js_literal(text) == {
        "a": "C:\\dir\\",
        "b": None,
        "c": 'say "undefined" twice: undefined',
    }


def test_slash_escape_and_unicode_escapes() -> None:
    value = parse_js_literal(r'{"u":"http:\u002F\u002Fa.b\u002Fc","e":"\ud83d\ude00 \u4e2d"}')
    assert value == {"u": "http://a.b/c", "e": "😀 中"}


def test_js_only_escapes_and_single_quoted_strings() -> None:
    text = r"""{"x":"tab\x09end","q":"it\'s","v":"\v\0","s":'single "quoted" \'undefined\'','w':'\u{1F600}'}"""
    assert parse_js_literal(text) == {
        "x": "tab\tend",
        "q": "it's",
        "v": "\v\0",
        "s": "single \"quoted\" 'undefined'",
        "w": "😀",
    }


def test_nan_and_infinity_become_none_like_json_stringify() -> None:
    assert parse_js_literal('{"a":NaN,"b":Infinity,"c":-Infinity,"d":[NaN]}') == {
        "a": None,
        "b": None,
        "c": None,
        "d": [None],
    }


@pytest.mark.parametrize(
    ("text", "position", "problem"),
    [
        ('{"a":1', 6, "truncated"),
        ('{"a":"abc', 5, "Unterminated string"),
        ('{"a":1}}', 7, "Extra data"),
        ('{"a":[1,2}', 9, "delimiter"),
        ('{"a": NaNa}', 9, "delimiter"),
        ('{"a": nan}', 6, "Expecting value"),
        ("{a: 1}", 1, "property name"),
        ('{"a":undefinedx}', 5, "Expecting value"),
        ("", 0, "truncated"),
    ],
)
def test_malformed_literals_name_the_position(text: str, position: int, problem: str) -> None:
    with pytest.raises(StateMalformed, match=problem) as caught:
        parse_js_literal(text)
    assert caught.value.position == position
    assert caught.value.reason == "state_malformed"
    assert f"char {position}" in str(caught.value)


def test_positions_point_into_the_original_text_after_rewrites() -> None:
    # `undefined` is padded to its own length; a rewritten JS string shifts offsets.
    text = """{"a":undefined,"b":'x\\x41',"c":'\\u{1F600}\\u{1F600}\\u{1F600}', "d": oops}"""
    with pytest.raises(StateMalformed) as caught:
        parse_js_literal(text)
    assert caught.value.position == text.index("oops")


def test_deep_nesting_is_a_typed_error_not_a_crash() -> None:
    with pytest.raises(StateMalformed, match="nested too deeply"):
        parse_js_literal("[" * 200_000 + "]" * 200_000)


def test_object_hook_runs_innermost_first() -> None:
    seen: list[list[str]] = []

    def hook(obj: dict[str, object]) -> dict[str, object]:
        seen.append(list(obj))
        return obj

    parse_js_literal('{"outer":{"inner":undefined}}', object_hook=hook)
    assert seen == [["inner"], ["outer"]]


def test_plain_json_round_trips_unchanged() -> None:
    value = {"a": [1, 2.5, True, False, None, "ü/€"], "b": {"c": "u"}, "true": "null"}
    assert parse_js_literal(json.dumps(value)) == value
    assert parse_js_literal(json.dumps(value, ensure_ascii=False, indent=2)) == value


_UNDEF = object()


def _emit(value: object) -> str:
    """JS literal text like the site writes: JSON, bare undefined, `/` as \\u002F."""
    if value is _UNDEF:
        return "undefined"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_emit(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_emit(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False).replace("/", "\\u002F")


def _expected(value: object) -> object:
    if value is _UNDEF:
        return None
    if isinstance(value, dict):
        return {k: _expected(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expected(v) for v in value]
    return value


def _random_value(rng: random.Random, depth: int) -> object:
    pieces = ["undefined", '"', "\\", "'", "/", ":", ",", "}", "]", "x", "中", " ", "\\u", "null"]
    roll = rng.random()
    if depth < 4 and roll < 0.25:
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}
    if depth < 4 and roll < 0.4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.6:
        return _UNDEF
    if roll < 0.9:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
    return rng.choice([0, -1, 2.5, True, False, None])


def test_random_literals_parse_exactly() -> None:
    """Strings full of quotes, backslashes and the word undefined next to bare ones."""
    rng = random.Random(5)
    for _ in range(400):
        value = {"root": _random_value(rng, 0)}
        text = _emit(value)
        assert parse_js_literal(text) == _expected(value), text
