"""The anti-bot table of the domain notes, as classify_response applies it."""

from __future__ import annotations

import json

import pytest
from scrapy.http import Headers

from crawler.parsing.errors import Captcha, LoginRequired, NoteGone, XsecTokenInvalid
from crawler.parsing.signals import (
    CODE_SIGNALS,
    ERROR_FOR_KIND,
    SiteSignal,
    classify_page,
    classify_response,
    error_for_code,
    error_for_signal,
)
from tests.parsing.samples import PAGE_01, SEARCH_06, real_bytes


def body(code: int, msg: str = "", success: bool = False) -> bytes:
    return json.dumps(
        {"code": code, "success": success, "msg": msg, "data": {}}, ensure_ascii=False
    ).encode()


@pytest.mark.parametrize("status", [461, 471])
def test_captcha_statuses(status: int) -> None:
    signal = classify_response(status, {}, b"")
    assert signal == SiteSignal("captcha", f"http_{status}", f"HTTP {status} verification")


def test_captcha_headers_in_scrapy_headers_any_case() -> None:
    headers = Headers({"verifytype": "102", "VerifyUuid": "abc-123", "Content-Type": "text/html"})
    signal = classify_response(461, headers, b"<html></html>")
    assert signal is not None and signal.kind == "captcha"
    assert "verifytype=102" in signal.detail and "verifyuuid=abc-123" in signal.detail
    # The headers alone are enough, whatever the status.
    alone = classify_response(200, Headers({"Verifytype": "102"}), b"{}")
    assert alone is not None and (alone.kind, alone.reason) == ("captcha", "verify_header")
    assert classify_response(200, {b"Verifytype": [b""]}, b"{}") is None  # present but empty


def test_signature_rejected_only_on_406() -> None:
    signal = classify_response(406, {}, b'{"code":-1,"success":false}')
    assert signal is not None and (signal.kind, signal.reason) == ("signature_rejected", "code_-1")
    assert classify_response(200, {}, b'{"code":-1,"success":false}') is None


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (-100, "cookie_expired"),
        (300011, "account_flagged"),
        (300012, "ip_blocked"),
        (300017, "xsec_invalid"),
        (-510000, "note_gone"),
        (-510001, "note_gone"),
        (300031, "note_gone"),
    ],
)
def test_api_codes(code: int, kind: str) -> None:
    signal = classify_response(200, {"Content-Type": "application/json"}, body(code, "站点消息"))
    assert signal is not None
    assert (signal.kind, signal.reason, signal.code) == (kind, f"code_{code}", code)
    assert f"code {code}" in signal.detail and "站点消息" in signal.detail


def test_normal_answers_are_not_signals() -> None:
    assert classify_response(200, {}, real_bytes(SEARCH_06)) is None
    assert classify_response(200, {}, real_bytes(PAGE_01)) is None
    assert classify_response(200, {}, body(0, "成功", True)) is None
    assert classify_response(200, {}, b"") is None
    assert classify_response(200, {}, b"{broken json") is None
    assert (
        classify_response(200, {}, b'{"code": 12345}') is None
    )  # unknown code: not an anti-bot signal
    assert classify_response(200, {}, b'{"code": true}') is None
    assert classify_response(404, {}, b"[1,2]") is None
    assert classify_response(200, {}, '  {"code": -100}') is not None  # str bodies too


def test_redirects_and_final_urls() -> None:
    captcha = "https://www.xiaohongshu.com/website-login/captcha?redirectPath=x&verifyUuid=u&verifyType=124"
    signal = classify_response(302, {"Location": captcha}, b"")
    assert signal is not None and (signal.kind, signal.reason) == ("captcha", "redirect_captcha")
    assert "verifyType=124" in signal.detail and "redirected to" in signal.detail
    gone = "https://www.xiaohongshu.com/404?source=note&error_code=300031&error_msg=当前笔记暂时无法浏览"
    signal = classify_response(302, {"Location": gone}, b"")
    assert signal is not None and (signal.kind, signal.reason) == ("note_gone", "code_300031")
    signal = classify_response(200, {}, b"<html></html>", url=gone.replace("300031", "300017"))
    assert signal is not None and signal.kind == "xsec_invalid" and "landed on" in signal.detail
    # A redirect to the home page says nothing by itself.
    assert classify_response(302, {"Location": "https://www.xiaohongshu.com/explore"}, b"") is None
    assert classify_response(302, {"Location": "/404?error_code=abc"}, b"") is None


def test_every_kind_has_its_typed_error() -> None:
    kinds = {kind for kind, _ in CODE_SIGNALS.values()} | {"captcha"}
    assert kinds == set(ERROR_FOR_KIND)
    for code, (kind, _) in CODE_SIGNALS.items():
        error = error_for_code(code, "m", "ctx")
        assert type(error) is ERROR_FOR_KIND[kind]
        assert error.code == code and str(error).startswith("ctx: ")
    assert isinstance(error_for_code(-100, None), LoginRequired)
    signal = SiteSignal("note_gone", "code_-510001", "gone", -510001)
    error = error_for_signal(signal, "note x")
    assert isinstance(error, NoteGone) and error.code == -510001 and str(error) == "note x: gone"
    assert error_for_signal(SiteSignal("captcha", "http_461", "d")).code is None


def test_page_markers() -> None:
    captcha = classify_page('<script>location.href="/website-login/captcha?verifyUuid=1"</script>')
    assert captcha is not None and captcha.kind == "captcha"
    assert isinstance(error_for_signal(captcha), Captcha)
    login = classify_page("<html><body><h1>登录后查看更多内容</h1></body></html>")
    assert login is not None and login.kind == "cookie_expired"
    xsec = classify_page("<div>访问链接异常</div>")
    assert xsec is not None and isinstance(error_for_signal(xsec), XsecTokenInvalid)
    coded = classify_page('<script>window.__ERR__={"code":-510001}</script><p>登录后查看</p>')
    assert coded is not None and (coded.kind, coded.reason) == ("note_gone", "code_-510001")
    # Text markers count only outside scripts and styles.
    assert (
        classify_page('<script>var tips="登录后查看";</script><style>/*账号异常*/</style>') is None
    )
    assert classify_page("<html><body>普通笔记</body></html>") is None
