"""Find, parse and clean ``window.__INITIAL_STATE__`` in a note page (or a raw state).

A server-rendered page carries several ``<script>`` blocks; the state is the one whose
body starts with the assignment. A state read from a live browser
(``JSON.stringify(window.__INITIAL_STATE__)``) is also accepted as is: it has Vue ref
wrappers ``{"__v_isRef": true, "_rawValue": X, "_value": X}`` around stores, which
are unwrapped wherever they appear.
"""

from __future__ import annotations

import re
from typing import Any

from crawler.parsing.errors import (
    BinaryContent,
    EmptyPage,
    PageTooLarge,
    StateMalformed,
    StateMissing,
)
from crawler.parsing.jsliteral import parse_js_literal

DEFAULT_MAX_PAGE_BYTES = 16 * 1024 * 1024
STATE_MARKER = "window.__INITIAL_STATE__"

_SCRIPT_OPEN_BEFORE = re.compile(r"<script\b[^<>]*>\s*\Z", re.I)
_ASSIGNMENT = re.compile(r"\s*=\s*")
_SCRIPT_CLOSE = re.compile(r"</script", re.I)
_SNIFF_BYTES = 4096
# Leading bytes of non-text bodies a page URL can answer with by mistake.
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF-", "a PDF document"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\ufffd]")


def page_text(html: str | bytes, *, max_bytes: int = DEFAULT_MAX_PAGE_BYTES) -> str:
    """The page as text, after the size, emptiness and binary checks.

    Raises ``PageTooLarge``, ``EmptyPage`` or ``BinaryContent`` naming what was seen.
    """
    if isinstance(html, bytes | bytearray | memoryview):
        raw = bytes(html)
        _check_size(len(raw), max_bytes)
        if not raw or raw.isspace():
            raise EmptyPage(f"empty page ({len(raw)} bytes, no content)")
        _sniff_binary(raw)
        text = raw.decode("utf-8", errors="replace")
    else:
        text = html
        # A character is 1-4 bytes in UTF-8: encode only when the bound is not enough.
        if len(text) * 4 > max_bytes:
            _check_size(len(text.encode("utf-8", errors="surrogatepass")), max_bytes)
        if not text or text.isspace():
            raise EmptyPage(f"empty page ({len(text)} characters, no content)")
    _sniff_garbled(text)
    return text[1:] if text.startswith("\ufeff") else text  # a byte-order mark


def locate_state(text: str) -> tuple[int, int] | None:
    """(start, end) of the state literal in a page or a raw state text, else None.

    Accepts a full HTML page (the ``<script>`` whose body is the assignment), the bare
    assignment ``window.__INITIAL_STATE__=…``, or the literal itself (``{…``).
    """
    stripped = len(text) - len(text.lstrip())
    if text.startswith("{", stripped):
        return stripped, len(text)
    if text.startswith(STATE_MARKER, stripped):
        return _literal_span(text, stripped + len(STATE_MARKER), in_script=False)
    index = text.find(STATE_MARKER)
    while index != -1:
        if _SCRIPT_OPEN_BEFORE.search(text, max(0, index - 512), index):
            span = _literal_span(text, index + len(STATE_MARKER), in_script=True)
            if span is not None:
                return span
        index = text.find(STATE_MARKER, index + len(STATE_MARKER))
    return None


def extract_initial_state(
    html: str | bytes, *, max_bytes: int = DEFAULT_MAX_PAGE_BYTES
) -> dict[str, Any]:
    """The parsed ``window.__INITIAL_STATE__`` with Vue refs unwrapped.

    Raises ``StateMissing`` (no state script), ``StateMalformed`` (with ``.position``
    inside the state text), or the page checks' errors (see ``page_text``).
    """
    text = page_text(html, max_bytes=max_bytes)
    span = locate_state(text)
    if span is None:
        raise StateMissing(
            f"no <script>{STATE_MARKER}=…</script> in a page of {len(text)} characters"
        )
    return parse_state_literal(text[span[0] : span[1]])


def parse_state_literal(literal: str) -> dict[str, Any]:
    """Parse the state literal text (what follows the ``=``) into a dict."""
    hook = unwrap_ref if "__v_isRef" in literal else None
    state = parse_js_literal(literal, object_hook=hook)
    if not isinstance(state, dict):
        raise StateMalformed(
            f"the state is a {type(state).__name__}, not an object: {literal[:80]!r}", position=0
        )
    return state


def unwrap_ref(obj: dict[str, Any]) -> Any:
    """A Vue ref object → its value; any other object unchanged (a json object_hook)."""
    if obj.get("__v_isRef") is True:
        if "_value" in obj:
            return obj["_value"]
        if "_rawValue" in obj:
            return obj["_rawValue"]
    return obj


def unwrap_refs(value: Any) -> Any:
    """Unwrap Vue refs everywhere in an already-parsed structure (e.g. from a browser)."""
    if isinstance(value, dict):
        return unwrap_ref({key: unwrap_refs(item) for key, item in value.items()})
    if isinstance(value, list):
        return [unwrap_refs(item) for item in value]
    return value


def _literal_span(text: str, after_marker: int, *, in_script: bool) -> tuple[int, int] | None:
    assignment = _ASSIGNMENT.match(text, after_marker)
    if assignment is None or text.startswith("=", assignment.end()):
        return None  # `window.__INITIAL_STATE__.x` or `==`: a use, not the assignment
    start = assignment.end()
    end = len(text)
    if in_script:
        close = text.find("</script", start)
        if close == -1:
            found = _SCRIPT_CLOSE.search(text, start)
            close = found.start() if found else -1
        if close != -1:
            end = close
    # Drop the statement's trailing `;` and whitespace.
    while end > start and text[end - 1] in " \t\r\n;":
        end -= 1
    return start, end


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise PageTooLarge(
            f"page of {size} bytes is over the {limit}-byte limit (XHS_MAX_PAGE_BYTES)",
            size=size,
            limit=limit,
        )


def _sniff_binary(raw: bytes) -> None:
    head = raw.lstrip()[:_SNIFF_BYTES]
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise BinaryContent(f"binary body, not a page: starts like {what} ({len(raw)} bytes)")
    if b"\x00" in head:
        raise BinaryContent(
            f"binary body, not a page: NUL bytes in the first {len(head)} bytes ({len(raw)} bytes)"
        )


def _sniff_garbled(text: str) -> None:
    """Reject text that is mostly control characters or undecodable bytes."""
    head = text[:_SNIFF_BYTES]
    bad = len(_CONTROL.findall(head))
    if bad * 20 > len(head):  # over 5 %: no real page looks like this
        raise BinaryContent(
            f"binary body, not a page: {bad} of the first {len(head)} characters are control "
            "characters or invalid UTF-8"
        )
