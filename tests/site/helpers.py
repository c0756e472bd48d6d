"""Small HTTP and page helpers for the sandbox site tests (no redirects followed)."""

from __future__ import annotations

import http.client
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sandbox.site import SiteServer, signing

COOKIE = "a1=sandbox; web_session=sandbox"
_STATE = re.compile(r"<script>window\.__INITIAL_STATE__=(.*?)</script>", re.S)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def fetch(
    url: str, method: str = "GET", body: str | None = None, headers: dict[str, str] | None = None
) -> Answer:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(
            method, target, body=body.encode() if body is not None else None, headers=headers or {}
        )
        response = conn.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def signed(
    site: SiteServer,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    version: int | None = None,
    cookie: str | None = COOKIE,
) -> Answer:
    """Call the API as the page's script does (same algorithm, computed in Python)."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
    version = site.knobs.signature_version if version is None else version
    headers = signing.sign(
        site.dataset.seed, version, path, text, str(int(time.time() * 1000)), "sandbox"
    )
    if body is not None:
        headers["Content-Type"] = "application/json;charset=UTF-8"
    if cookie:
        headers["Cookie"] = cookie
    return fetch(site.url + path, "POST" if body is not None else "GET", text or None, headers)


def js_to_json(literal: str) -> str:
    """Token-aware: bare ``undefined`` outside string literals becomes ``null``."""
    out: list[str] = []
    i, n, in_string = 0, len(literal), False
    while i < n:
        ch = literal[i]
        if in_string:
            out.append(ch)
            if ch == "\\":
                out.append(literal[i + 1])
                i += 2
                continue
            in_string = ch != '"'
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif literal.startswith("undefined", i):
            out.append("null")
            i += len("undefined")
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def page_state(html: str) -> tuple[str, dict[str, Any]]:
    """``(raw literal, parsed state)`` of a page."""
    match = _STATE.search(html)
    assert match, "no __INITIAL_STATE__ script"
    return match.group(1), json.loads(js_to_json(match.group(1)))
