"""Parse the JS object literal of ``window.__INITIAL_STATE__`` exactly, in linear time.

The state is JSON except for JS-only tokens: bare ``undefined`` values and (rarely) JS
string escapes or single-quoted strings. A global ``replace("undefined", "null")``
corrupts every title that contains the word, so the conversion is token-aware.

Two passes, both exact:

- Fast (real pages): each ``undefined`` word outside a double-quoted string becomes
  ``null``. Whether a position is inside a string is the parity of the unescaped
  ``"`` before it, counted with ``str.count`` in C. If ``json.loads`` then accepts the
  text, the answer is exact: in valid JSON quote parity *is* the string structure, and
  the replacement adds no quote. Anything else (single quotes, JS-only escapes,
  malformed input) fails ``json.loads`` and goes to the second pass.
- Scanner: one compiled regex walks over whole string literals and punctuation,
  stopping only at a bare ``undefined`` (rewritten) or at a string that is not
  already JSON (rewritten through a JS-escape decoder). It also yields the errors.

``undefined`` becomes ``null     `` (padded to the same nine characters) so that
``json.loads`` error positions still point into the original text.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from crawler.parsing.errors import StateMalformed

# A double-quoted string that json.loads accepts as is.
_JSON_STRING = r'"[^"\\]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\]*)*+"'
# Everything up to the next quote or `u` (the only letter that can start `undefined`).
_PLAIN = r"[^\"'u]++"
_LONE_U = r"u(?!ndefined\b)"
# The longest prefix that needs no rewriting; possessive, so no backtracking state.
_RUN = re.compile(rf"(?:{_PLAIN}|{_JSON_STRING}|{_LONE_U})*+")
# Any JS string literal (single or double quotes, any escape).
_JS_STRING = re.compile(r""""[^"\\]*+(?:\\.[^"\\]*+)*+"|'[^'\\]*+(?:\\.[^'\\]*+)*+'""", re.S)
_JS_ESCAPE = re.compile(
    r"\\(?:u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|([0-7]{1,3})"
    r"|(\r\n|[\n\r\u2028\u2029])|(.))",
    re.S,
)
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_UNDEFINED = "undefined"
_NULL_PADDED = "null".ljust(len(_UNDEFINED))
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


def parse_js_literal(
    text: str, *, object_hook: Callable[[dict[str, Any]], Any] | None = None
) -> Any:
    """Parse a JS object/array literal that is JSON plus JS-only tokens.

    Bare ``undefined``, ``NaN`` and ``±Infinity`` become ``None`` (what
    ``JSON.stringify`` would write); ``undefined`` inside a string stays text.
    ``object_hook`` is applied to every object, innermost first.
    Raises ``StateMalformed`` naming the position and the problem.
    """

    def load(converted: str) -> Any:
        return json.loads(
            converted, strict=False, parse_constant=_constant_to_none, object_hook=object_hook
        )

    try:
        return load(_replace_bare_undefined(text))
    except (json.JSONDecodeError, RecursionError):
        pass  # not plain JSON + undefined, or malformed: the scanner decides and explains
    converted, shifts = _to_json(text)
    try:
        return load(converted)
    except json.JSONDecodeError as exc:
        position = _original_position(exc.pos, shifts)
        raise StateMalformed(_describe(text, position, exc.msg), position=position) from None
    except RecursionError:
        raise StateMalformed("object literal nested too deeply to parse", position=None) from None


def _replace_bare_undefined(text: str) -> str:
    """``text`` with every ``undefined`` word at even quote parity as padded ``null``.

    Exact for JSON-plus-undefined text (see the module docstring); for anything else
    the result fails ``json.loads``.
    """
    found = []
    index = text.find(_UNDEFINED)
    while index != -1:
        end = index + len(_UNDEFINED)
        if (index == 0 or text[index - 1] not in _IDENTIFIER_CHARS) and (
            end == len(text) or text[end] not in _IDENTIFIER_CHARS
        ):
            found.append(index)
        index = text.find(_UNDEFINED, end)
    if not found:
        return text
    escaped = _escaped_quotes(text)
    pieces = []
    inside = False
    counted = 0  # quotes are counted in text[:counted]
    start = 0
    for index in found:
        quotes = text.count('"', counted, index)
        quotes -= bisect_left(escaped, index) - bisect_left(escaped, counted)
        inside ^= quotes % 2 == 1
        counted = index
        if not inside:
            pieces.append(text[start:index])
            pieces.append(_NULL_PADDED)
            start = index + len(_UNDEFINED)
    pieces.append(text[start:])
    return "".join(pieces)


def _escaped_quotes(text: str) -> list[int]:
    """Positions of ``"`` escaped by an odd run of backslashes (ascending)."""
    positions = []
    index = text.find('\\"')
    while index != -1:
        run = 1
        while index - run >= 0 and text[index - run] == "\\":
            run += 1
        if run % 2 == 1:  # `index` is the last backslash: run counts the whole run
            positions.append(index + 1)
        index = text.find('\\"', index + 2)
    return positions


def _to_json(text: str) -> tuple[str, list[tuple[int, int]]]:
    """JSON text for ``text`` plus (converted offset, cumulative shift) breakpoints.

    The breakpoints exist only where a rewritten JS string changed length, which
    real pages never need; positions elsewhere are unchanged.
    """
    out: list[str] = []
    shifts: list[tuple[int, int]] = []
    shift = 0
    pos = 0
    size = len(text)
    run = _RUN.match
    starts_with = text.startswith
    while True:
        end = run(text, pos).end()  # type: ignore[union-attr]  # `*+` always matches
        if end >= size:
            out.append(text[pos:])
            break
        if starts_with(_UNDEFINED, end):
            # The run only stops at a `u` when a whole `undefined` token starts there.
            out.append(text[pos:end])
            out.append(_NULL_PADDED)
            pos = end + len(_UNDEFINED)
            continue
        string = _JS_STRING.match(text, end)
        if string is None:
            # An unterminated string: hand the rest over unchanged, json.loads reports it.
            out.append(text[pos:])
            break
        rewritten = json.dumps(_decode_js_string(string.group()), ensure_ascii=False)
        out.append(text[pos:end])
        out.append(rewritten)
        shift += len(rewritten) - (string.end() - end)
        pos = string.end()
        shifts.append((pos + shift, shift))
    return "".join(out), shifts


def _decode_js_string(literal: str) -> str:
    """The value of a JS string literal (quotes included in ``literal``)."""

    def escape(match: re.Match[str]) -> str:
        braced, four, two, octal, continuation, other = match.groups()
        if braced is not None:
            return chr(min(int(braced, 16), 0x10FFFF))
        if four is not None or two is not None:
            return chr(int(four or two, 16))
        if octal is not None:
            return chr(int(octal, 8) & 0xFF)
        if continuation is not None:
            return ""
        return _SIMPLE_ESCAPES.get(other, other)

    value = _JS_ESCAPE.sub(escape, literal[1:-1])
    # Join \uD83D\uDE00-style surrogate pairs into one character.
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _constant_to_none(name: str) -> None:
    """``NaN`` / ``Infinity`` / ``-Infinity`` → None, as ``JSON.stringify`` writes them."""
    return None


def _original_position(converted_pos: int, shifts: list[tuple[int, int]]) -> int:
    index = bisect_right(shifts, (converted_pos, float("inf"))) - 1
    return converted_pos - (shifts[index][1] if index >= 0 else 0)


def _describe(text: str, position: int, problem: str) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    if position >= len(text):
        where = f"at the end (char {position} of {len(text)}): the literal is truncated"
    elif problem.startswith("Unterminated string"):
        where = f"at char {position} (line {line}, column {column}): a string runs to the end, truncated"
    else:
        where = f"at char {position} (line {line}, column {column})"
    near = text[max(0, position - 40) : position + 40]
    return f"not a valid object literal {where}: {problem}; near {near!r}"
