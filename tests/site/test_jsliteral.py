"""The state serializer writes what the real page has: bare undefined, \\u002F escapes."""

from __future__ import annotations

import json

from sandbox.site.jsliteral import UNDEFINED, to_js_literal
from tests.site.helpers import js_to_json


def test_undefined_is_bare_and_strings_stay_strings() -> None:
    state = {"a": UNDEFINED, "title": "undefined 的用法", "b": [UNDEFINED, None, "undefined"]}
    text = to_js_literal(state)
    assert text == '{"a":undefined,"title":"undefined 的用法","b":[undefined,null,"undefined"]}'
    assert json.loads(js_to_json(text)) == {
        "a": None,
        "title": "undefined 的用法",
        "b": [None, None, "undefined"],
    }


def test_slashes_are_escaped_everywhere_and_round_trip() -> None:
    state = {"url": "http://x/y</script>", "k/ey": 1, "zh": "中文", "q": 'say "hi"\n'}
    text = to_js_literal(state)
    assert "/" not in text
    assert "\\u002F\\u002Fx\\u002Fy<\\u002Fscript>" in text
    assert "中文" in text
    assert json.loads(text) == state
