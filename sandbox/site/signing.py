"""Request signatures of the sandbox web API (``x-s``, ``x-t``, ``x-s-common``).

Like the real site, the page's own JavaScript computes the signature headers
(``window._webmsxyw(url, body)``) and the API answers HTTP 406 when they are missing or
wrong. The algorithm is a keyed hash of ``path + body + x-t``: four 32-bit FNV-1a lanes
with a final avalanche over ``secret:lane:message`` (inner), then the same over
``secret + inner`` (outer). The secret depends on the sandbox seed and on the signature
VERSION, which ``rotate_signature`` bumps while the server runs: pages served after a
rotation carry the new script, and calls signed with an old version are rejected.

The same algorithm is written twice: in Python (``sign``/``verify``, used by the server
and by tests) and in plain JavaScript (``signing_script``, embedded in the pages).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_GOLDEN = 0x9E3779B9
_M32 = 0xFFFFFFFF


def secret_for(seed: int, version: int) -> str:
    return hashlib.sha256(f"sandbox-sign:{seed}:{version}".encode()).hexdigest()[:32]


def _h32(start: int, data: bytes) -> int:
    h = start & _M32
    for byte in data:
        h ^= byte
        h = (h * _FNV_PRIME) & _M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h


def _lanes(key: str, message: str) -> str:
    return "".join(
        f"{_h32(_FNV_OFFSET ^ ((lane * _GOLDEN) & _M32), f'{key}:{lane}:{message}'.encode()):08x}"
        for lane in range(4)
    )


def digest(secret: str, message: str) -> str:
    """32 hex characters: outer(secret, inner(secret, message))."""
    return _lanes(secret, secret + _lanes(secret, message))


def _b64json(obj: dict) -> str:
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def sign(seed: int, version: int, url: str, body: str, x_t: str, a1: str = "") -> dict[str, str]:
    """The headers the page's script sends for ``url`` (path + query) and ``body`` text."""
    payload = digest(secret_for(seed, version), url + body + x_t)
    x_s = "XYW_" + _b64json(
        {
            "signSvn": "56",
            "signType": "x2",
            "appId": "xhs-pc-web",
            "signVersion": str(version),
            "payload": payload,
        }
    )
    common = _b64json(
        {"s0": 3, "s1": "", "x0": "1", "x1": "4.2.6", "x2": "Windows", "x3": "xhs-pc-web",
         "x4": "4.62.3", "x5": a1, "x6": x_t, "x7": x_s, "x8": "", "x9": _h32(_FNV_OFFSET, (x_t + x_s).encode())}
    )  # fmt: skip
    return {"x-s": x_s, "x-t": x_t, "x-s-common": common}


def _decode_b64json(text: str) -> dict | None:
    try:
        value = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


def verify(seed: int, version: int, url: str, body: str, headers: Mapping[str, str]) -> bool:
    """Whether the signature headers of a request are valid for the current version."""
    x_s, x_t, common = headers.get("x-s", ""), headers.get("x-t", ""), headers.get("x-s-common", "")
    if not (x_s.startswith("XYW_") and x_t.isdigit() and common):
        return False
    fields = _decode_b64json(x_s[4:])
    extra = _decode_b64json(common)
    if fields is None or extra is None:
        return False
    if (
        fields.get("signVersion") != str(version)
        or extra.get("x6") != x_t
        or extra.get("x7") != x_s
    ):
        return False
    return fields.get("payload") == digest(secret_for(seed, version), url + body + x_t)


def signing_script(seed: int, version: int) -> str:
    """Plain JS defining ``window._webmsxyw(url, body)`` and ``window._xsCommon(xs, xt)``.

    The secret is spelled as character codes, as obfuscated scripts do.
    """
    codes = ",".join(str(ord(c)) for c in secret_for(seed, version))
    return f"""(function () {{
  var K = String.fromCharCode({codes});
  var V = "{version}";
  function h32(start, bytes) {{
    var h = start >>> 0;
    for (var i = 0; i < bytes.length; i++) {{
      h = (h ^ bytes[i]) >>> 0;
      h = Math.imul(h, {_FNV_PRIME}) >>> 0;
    }}
    h = (h ^ (h >>> 16)) >>> 0;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    return h;
  }}
  function hex8(n) {{ return ("00000000" + n.toString(16)).slice(-8); }}
  function lanes(key, msg) {{
    var enc = new TextEncoder(), out = "";
    for (var lane = 0; lane < 4; lane++) {{
      var start = ({_FNV_OFFSET} ^ Math.imul(lane, {_GOLDEN})) >>> 0;
      out += hex8(h32(start, enc.encode(key + ":" + lane + ":" + msg)));
    }}
    return out;
  }}
  function b64json(obj) {{ return btoa(JSON.stringify(obj)); }}
  function cookie(name) {{
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }}
  window._webmsxyw = function (url, body) {{
    var text = body == null ? "" : (typeof body === "string" ? body : JSON.stringify(body));
    var xt = String(Date.now());
    var payload = lanes(K, K + lanes(K, url + text + xt));
    var xs = "XYW_" + b64json({{signSvn: "56", signType: "x2", appId: "xhs-pc-web", signVersion: V, payload: payload}});
    return {{"X-s": xs, "X-t": xt}};
  }};
  window._xsCommon = function (xs, xt) {{
    return b64json({{s0: 3, s1: "", x0: "1", x1: "4.2.6", x2: "Windows", x3: "xhs-pc-web", x4: "4.62.3",
      x5: cookie("a1"), x6: xt, x7: xs, x8: "", x9: h32({_FNV_OFFSET}, new TextEncoder().encode(xt + xs))}});
  }};
  window._sbxApi = function (method, url, bodyObj) {{
    var body = bodyObj == null ? "" : JSON.stringify(bodyObj);
    var sig = window._webmsxyw(url, body);
    var headers = {{"x-s": sig["X-s"], "x-t": sig["X-t"], "x-s-common": window._xsCommon(sig["X-s"], sig["X-t"])}};
    if (body) headers["content-type"] = "application/json;charset=UTF-8";
    return fetch(url, {{method: method, headers: headers, body: body || undefined, credentials: "include"}})
      .then(function (r) {{ return r.json(); }});
  }};
}})();"""
