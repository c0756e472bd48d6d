"""Finding the state script among the page's scripts, page checks, Vue ref unwrapping.

Real samples: tests/data/xhs-real/01 (full page) and 02b (its raw state); origins in
tests/data/xhs-real/MANIFEST.md.
"""

from __future__ import annotations

import gzip
import json
import re

import pytest

from crawler.parsing.errors import (
    BinaryContent,
    EmptyPage,
    PageTooLarge,
    StateMalformed,
    StateMissing,
)
from crawler.parsing.state import (
    DEFAULT_MAX_PAGE_BYTES,
    extract_initial_state,
    locate_state,
    page_text,
    unwrap_refs,
)
from tests.parsing.samples import NOTE_01_ID, PAGE_01, STATE_02B, real_bytes, real_text


def test_finds_the_state_among_the_pages_scripts() -> None:
    page = real_text(PAGE_01)
    assert page.count("<script") > 10
    state = extract_initial_state(page)
    assert set(state) >= {"global", "user", "note", "feed"}
    assert state["note"]["noteDetailMap"][NOTE_01_ID]["note"]["ipLocation"] == "湖南"
    assert state["global"]["pwaAddDesktopPrompt"] is None


def test_span_is_exactly_the_raw_state_02b() -> None:
    page = real_text(PAGE_01)
    span = locate_state(page)
    assert span is not None
    assert page[span[0] : span[1]] == real_text(STATE_02B).strip()


def test_page_and_raw_state_give_equal_states() -> None:
    assert extract_initial_state(real_bytes(PAGE_01)) == extract_initial_state(
        real_bytes(STATE_02B)
    )


def test_uses_of_the_name_are_not_mistaken_for_the_assignment() -> None:
    page = (
        '<html><head><script>if(typeof window.__INITIAL_STATE__!=="undefined"){x()}</script>'
        "<script>var s = window.__INITIAL_STATE__.note;</script>"
        "<script>window.__INITIAL_STATE__ === 1</script>"
        '<SCRIPT type="text/javascript">\n  window.__INITIAL_STATE__ = {"a":undefined,"b":"</x>"};\n'
        "</SCRIPT></head></html>"
    )
    assert extract_initial_state(page) == {"a": None, "b": "</x>"}


def test_bare_assignment_text_is_accepted() -> None:
    assert extract_initial_state('window.__INITIAL_STATE__={"a":1};') == {"a": 1}


def test_state_without_closing_script_is_truncated() -> None:
    page = '<html><script>window.__INITIAL_STATE__={"note":{"noteDetailMap":{"x":'
    with pytest.raises(StateMalformed, match="truncated") as caught:
        extract_initial_state(page)
    assert caught.value.position == len('{"note":{"noteDetailMap":{"x":')


def test_no_state_script() -> None:
    with pytest.raises(StateMissing, match=r"no <script>window\.__INITIAL_STATE__"):
        extract_initial_state("<html><body><script>window.__SSR__=true</script></body></html>")


def test_state_that_is_not_an_object() -> None:
    with pytest.raises(StateMalformed, match="is a list, not an object"):
        extract_initial_state("<script>window.__INITIAL_STATE__=[1,2]</script>")


def _wrap(value: object) -> dict[str, object]:
    return {
        "__v_isRef": True,
        "__v_isShallow": False,
        "_rawValue": value,
        "_value": value,
        "dep": {},
    }


def test_vue_refs_from_a_live_browser_are_unwrapped_everywhere() -> None:
    """``JSON.stringify(window.__INITIAL_STATE__)`` after hydration wraps stores in refs."""
    state = extract_initial_state(real_bytes(STATE_02B))
    wrapped = {name: _wrap(store) for name, store in state.items()}
    # Refs nest too: a ref inside a store inside a ref.
    wrapped["note"]["_value"] = dict(state["note"], volume=_wrap(_wrap(0.5)))  # type: ignore[index]
    text = json.dumps(wrapped, ensure_ascii=False)
    assert text.count("__v_isRef") == len(state) + 3  # the inner ref is in _value and _rawValue
    unwrapped = extract_initial_state(text)
    assert unwrapped == dict(state, note=dict(state["note"], volume=0.5))
    assert unwrap_refs(json.loads(text)) == unwrapped


def test_ref_without_value_fields_is_left_alone() -> None:
    assert extract_initial_state('{"a":{"__v_isRef":true}}') == {"a": {"__v_isRef": True}}
    assert extract_initial_state('{"a":{"__v_isRef":false,"_value":1}}') == {
        "a": {"__v_isRef": False, "_value": 1}
    }


def test_page_size_limit() -> None:
    assert DEFAULT_MAX_PAGE_BYTES == 16 * 1024 * 1024
    page = real_bytes(PAGE_01)
    with pytest.raises(
        PageTooLarge, match=f"page of {len(page)} bytes is over the 1000-byte limit"
    ) as caught:
        extract_initial_state(page, max_bytes=1000)
    assert (caught.value.size, caught.value.limit) == (len(page), 1000)
    # Text is measured in UTF-8 bytes, not characters.
    chinese = "中" * 400  # 1200 bytes
    with pytest.raises(PageTooLarge):
        page_text(chinese, max_bytes=1000)
    assert page_text(chinese, max_bytes=1200) == chinese


@pytest.mark.parametrize("body", [b"", b"   \r\n\t ", "", "\n\n"])
def test_empty_pages(body: bytes | str) -> None:
    with pytest.raises(EmptyPage, match="empty page"):
        extract_initial_state(body)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (gzip.compress(b"<html>" + b"x" * 100 + b"</html>"), "gzip-compressed data"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "a PNG image"),
        (b"\xff\xd8\xff\xe0" + bytes(range(256)), "a JPEG image"),
        (b"<html>\x00\x01\x02</html>", "NUL bytes"),
        (bytes(range(128, 256)) * 8, "invalid UTF-8"),
        ("\x01\x02\x03\x04 text" * 10, "control characters"),
    ],
)
def test_binary_bodies_are_named(body: bytes | str, named: str) -> None:
    with pytest.raises(BinaryContent, match=re.escape(named)) as caught:
        extract_initial_state(body)
    assert caught.value.reason == "binary_content"
    assert isinstance(caught.value, StateMissing)


def test_byte_order_mark_is_dropped() -> None:
    assert extract_initial_state(b'\xef\xbb\xbf{"a":undefined}') == {"a": None}
    assert extract_initial_state('\ufeff<script>window.__INITIAL_STATE__={"a":1}</script>') == {
        "a": 1
    }
