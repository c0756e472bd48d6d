"""The site's anti-bot and error signals as data, and their classification.

One table maps the web API's error codes to a signal kind; the same table drives
``classify_response`` (what the middleware reacts to), the typed errors of the listing
and note parsers, and the page markers used when a page has no note in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from crawler.parsing.errors import (
    AccountFlagged,
    ApiError,
    Captcha,
    IpBlocked,
    LoginRequired,
    NoteGone,
    ParseError,
    SignatureRejected,
    XsecTokenInvalid,
)
from crawler.parsing.images import split_url

SignalKind = Literal[
    "captcha",
    "cookie_expired",
    "ip_blocked",
    "account_flagged",
    "signature_rejected",
    "xsec_invalid",
    "note_gone",
]


@dataclass(frozen=True, slots=True)
class SiteSignal:
    """What the site said: ``kind`` drives the reaction, ``reason`` is a stats key."""

    kind: SignalKind
    reason: str
    detail: str
    code: int | None = None  # the site's error code, when it gave one


# API `code` → (kind, meaning). Codes and their messages as the site sends them.
CODE_SIGNALS: Mapping[int, tuple[SignalKind, str]] = {
    -100: ("cookie_expired", "登录已过期: the login session expired, refresh the cookie"),
    -1: ("signature_rejected", "the request signature (x-s/x-t headers) was rejected"),
    300011: ("account_flagged", "账号异常: the account is flagged"),
    300012: ("ip_blocked", "网络连接异常: the IP is blocked"),
    300017: ("xsec_invalid", "访问链接异常: the xsec_token is missing, wrong or expired"),
    300031: ("note_gone", "当前笔记暂时无法浏览: the note is not viewable"),
    -510000: ("note_gone", "the note does not exist or was deleted"),
    -510001: ("note_gone", "the note does not exist or was deleted"),
}
CAPTCHA_STATUSES = frozenset({461, 471})
CAPTCHA_HEADERS = ("verifytype", "verifyuuid")
SIGNATURE_STATUS = 406
CAPTCHA_PATH = "/website-login/captcha"
LOGIN_PATHS = ("/login", "/website-login/login")

# Visible-text markers of error pages, most specific first. Heuristic: used only when
# a page has no note in it, to say why.
PAGE_TEXT_MARKERS: tuple[tuple[SignalKind, tuple[str, ...]], ...] = (
    ("note_gone", ("当前笔记暂时无法浏览", "笔记不存在", "该笔记已被删除", "你访问的页面不见了")),
    ("xsec_invalid", ("访问链接异常",)),
    ("account_flagged", ("账号异常",)),
    ("ip_blocked", ("网络连接异常",)),
    ("captcha", ("请完成安全验证", "安全验证", "滑块验证", "验证码验证")),
    ("cookie_expired", ("登录已过期", "请先登录", "登录后查看")),
)
# Markers searched in the whole page, scripts included (redirect targets, captcha ids).
PAGE_RAW_MARKERS: tuple[tuple[SignalKind, tuple[str, ...]], ...] = (
    ("captcha", (CAPTCHA_PATH, "verifyUuid", "verifyType")),
)

ERROR_FOR_KIND: Mapping[SignalKind, type[ParseError]] = {
    "captcha": Captcha,
    "cookie_expired": LoginRequired,
    "ip_blocked": IpBlocked,
    "account_flagged": AccountFlagged,
    "signature_rejected": SignatureRejected,
    "xsec_invalid": XsecTokenInvalid,
    "note_gone": NoteGone,
}

_ERROR_CODE_IN_TEXT = re.compile(r"error_code=(-?\d{1,7})|\"code\"\s*:\s*(-?\d{1,7})")
_HIDDEN_BLOCKS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def classify_response(
    status: int, headers: Mapping[Any, Any], body: bytes | str, *, url: str | None = None
) -> SiteSignal | None:
    """The anti-bot / error signal an HTTP answer carries, or None for a normal answer.

    ``headers`` may be any mapping (Scrapy ``Headers`` included: bytes keys, list
    values); names are compared case-insensitively. ``url`` is the final URL after
    redirects, when the caller has it.
    """
    names = _normalized_headers(headers)
    verify = {name: names[name] for name in CAPTCHA_HEADERS if names.get(name)}
    if status in CAPTCHA_STATUSES or verify:
        shown = ", ".join(f"{name}={value[:40]}" for name, value in verify.items())
        reason = f"http_{status}" if status in CAPTCHA_STATUSES else "verify_header"
        return SiteSignal(
            "captcha", reason, f"HTTP {status} verification" + (f" ({shown})" if shown else "")
        )
    if 300 <= status < 400 and names.get("location"):
        signal = classify_url(names["location"], redirect=True)
        if signal is not None:
            return signal
    if url:
        signal = classify_url(url, redirect=False)
        if signal is not None:
            return signal
    answer = _json_answer(body)
    if answer is None:
        return None
    code = answer.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or code == 0:
        return None
    if code == -1 and status != SIGNATURE_STATUS:
        return None  # -1 means a rejected signature only on a 406
    rule = CODE_SIGNALS.get(code)
    if rule is None:
        return None
    kind, meaning = rule
    detail = _code_detail(code, answer.get("msg"), meaning, status)
    return SiteSignal(kind, f"code_{code}", detail, code)


def classify_url(url: str, *, redirect: bool = False) -> SiteSignal | None:
    """A signal from a URL the site sent us to: captcha page or ``error_code=`` query."""
    parts = split_url(url)
    query = parse_qs(parts.query)
    where = "redirected to" if redirect else "landed on"
    if parts.path.rstrip("/").endswith(CAPTCHA_PATH) or "verifyUuid" in query:
        verify_type = query.get("verifyType", [""])[0][:40]
        return SiteSignal(
            "captcha", "redirect_captcha", f"{where} the captcha page (verifyType={verify_type})"
        )
    for raw in query.get("error_code", []):
        try:
            code = int(raw)
        except ValueError:
            continue
        rule = CODE_SIGNALS.get(code)
        if rule is not None:
            message = query.get("error_msg", [""])[0][:100]
            detail = f"{where} an error page: error_code={code} {message!r}: {rule[1]}"
            return SiteSignal(rule[0], f"code_{code}", detail, code)
    return None


def is_login_url(url: str) -> bool:
    """Whether the site sent us to its login page."""
    path = split_url(url).path.rstrip("/")
    return any(path.endswith(login) for login in LOGIN_PATHS)


def classify_page(html: str) -> SiteSignal | None:
    """Why a page that holds no note is an error page, from its markers (heuristic).

    Looks for an explicit code first (``error_code=…`` or ``"code": …`` of the table),
    then captcha URLs anywhere, then visible-text markers outside scripts and styles.
    """
    for match in _ERROR_CODE_IN_TEXT.finditer(html):
        code = int(match.group(1) or match.group(2))
        rule = CODE_SIGNALS.get(code)
        if rule is not None and code != -1:
            detail = f"the page carries code {code}: {rule[1]}"
            return SiteSignal(rule[0], f"code_{code}", detail, code)
    for kind, markers in PAGE_RAW_MARKERS:
        for marker in markers:
            if marker in html:
                return SiteSignal(kind, "page_marker", f"the page mentions {marker!r}")
    visible = _TAG.sub(" ", _HIDDEN_BLOCKS.sub(" ", html))
    for kind, markers in PAGE_TEXT_MARKERS:
        for marker in markers:
            if marker in visible:
                return SiteSignal(kind, "page_marker", f"the page says {marker!r}")
    return None


def error_for_signal(signal: SiteSignal, context: str = "") -> ParseError:
    """The typed parse error for a signal; ``context`` prefixes the message."""
    prefix = f"{context}: " if context else ""
    return ERROR_FOR_KIND[signal.kind](f"{prefix}{signal.detail}", code=signal.code)


def error_for_code(code: int, msg: Any, context: str = "") -> ParseError:
    """The typed parse error for a non-zero API ``code`` (``ApiError`` when unknown)."""
    prefix = f"{context}: " if context else ""
    rule = CODE_SIGNALS.get(code)
    if rule is None:
        return ApiError(f"{prefix}{_code_detail(code, msg, 'unknown error code', None)}", code=code)
    kind, meaning = rule
    return ERROR_FOR_KIND[kind](f"{prefix}{_code_detail(code, msg, meaning, None)}", code=code)


def _code_detail(code: int, msg: Any, meaning: str, status: int | None) -> str:
    said = f" msg={str(msg)[:100]!r}" if msg else ""
    http = f"HTTP {status}, " if status is not None else ""
    return f"{http}code {code}{said}: {meaning}"


def _normalized_headers(headers: Mapping[Any, Any]) -> dict[str, str]:
    """Lower-case str names → last str value, whatever the mapping's types."""
    normalized: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(value, list | tuple):
            value = value[-1] if value else ""
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        normalized[key.lower()] = text
    return normalized


def _json_answer(body: bytes | str) -> dict[str, Any] | None:
    """The body as a JSON object when it is one (API answers), else None."""
    head = body[:64].lstrip()
    if not head.startswith(b"{" if isinstance(body, bytes) else "{"):
        return None
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return answer if isinstance(answer, dict) else None
