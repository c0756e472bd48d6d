"""pipelines.urlsafety: the pure policy, and its DNS step with a real and a fake resolver."""

from __future__ import annotations

import socket

import pytest
from scrapy.settings import Settings

from pipelines.urlsafety import UrlPolicy, address_kind, is_local_base

REMOTE = UrlPolicy.build(base_url="https://www.xiaohongshu.com")
LOCAL = UrlPolicy.build(base_url="http://127.0.0.1:8080")


def reason(policy: UrlPolicy, url: str) -> str | None:
    refusal = policy.check(url)
    return None if refusal is None else refusal.reason


@pytest.mark.parametrize(
    "url",
    [
        "http://sns-webpic-qc.xhscdn.com/202507161200/abc/notes_pre_post/tok!nd_dft_wlteh_webp_3",
        "https://sns-img-bd.xhscdn.com/spectrum/tok",
        "https://ci.xiaohongshu.com/tok?imageView2/format/png",
        "https://sns-video-bd.xhscdn.com/stream/1/110/259/abc.mp4",
        "https://sns-avatar-qc.xhscdn.com/avatar/x",  # any *.xhscdn.com
        "HTTPS://SNS-IMG-BD.XHSCDN.COM./tok",  # case and trailing dot
        "https://sns-img-bd.xhscdn.com:443/tok",  # the usual port, written out
        "http://sns-webpic-qc.xhscdn.com:80/tok",
    ],
)
def test_xhs_image_hosts_are_allowed(url):
    assert REMOTE.check(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://evil.example.com/a.jpg", "host_not_allowed"),
        ("https://xhscdn.com.evil.example/a.jpg", "host_not_allowed"),
        ("https://evilxhscdn.com/a.jpg", "host_not_allowed"),
        ("https://www.xiaohongshu.com/explore/1", "host_not_allowed"),
        ("http://127.0.0.1/a.jpg", "host_not_allowed"),
        ("http://127.0.0.9:8080/a.jpg", "host_not_allowed"),
        ("http://[::1]/", "host_not_allowed"),
        ("http://localhost/a.jpg", "host_not_allowed"),
        ("http://169.254.169.254/latest/meta-data/", "host_not_allowed"),
        ("http://10.0.0.5/a.jpg", "host_not_allowed"),
        ("http://2130706433/", "host_not_allowed"),  # 127.0.0.1 as one number
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("data:image/png;base64,iVBORw0KGgo=", "scheme_not_allowed"),
        ("ftp://sns-img-bd.xhscdn.com/tok", "scheme_not_allowed"),
        ("javascript:alert(1)", "scheme_not_allowed"),
        ("//sns-img-bd.xhscdn.com/tok", "scheme_not_allowed"),
        ("http://sns-img-bd.xhscdn.com@127.0.0.1/x", "credentials_in_url"),
        ("http://user:pw@sns-img-bd.xhscdn.com/x", "credentials_in_url"),
        ("http:///nohost", "invalid_url"),
        ("http://sns-img-bd.xhscdn.com:99999/x", "invalid_url"),
        # Allowed hosts on their usual ports only (issue 18, defect 7).
        ("https://sns-img-bd.xhscdn.com:8443/tok", "port_not_allowed"),
        ("http://sns-img-bd.xhscdn.com:443/tok", "port_not_allowed"),
        ("https://ci.xiaohongshu.com:22/tok", "port_not_allowed"),
        ("http://[::1/x", "invalid_url"),
    ],
)
def test_refused_when_the_base_is_remote(url, why):
    assert reason(REMOTE, url) == why


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/img/a.jpg",
        "http://127.0.0.9/a.jpg",
        "http://[::1]:9000/a",
        "http://localhost:9000/a",
        "https://sns-img-bd.xhscdn.com/tok",
    ],
)
def test_loopback_allowed_when_the_base_is_local(url):
    assert LOCAL.check(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("data:text/plain,hi", "scheme_not_allowed"),
        ("ftp://127.0.0.1/a", "scheme_not_allowed"),
        ("http://10.0.0.5/a", "host_not_allowed"),
        ("http://169.254.169.254/", "host_not_allowed"),
        ("http://192.168.1.1/", "host_not_allowed"),
        ("http://0.0.0.0:9000/", "host_not_allowed"),
        ("https://sns-img-bd.xhscdn.com:8443/tok", "port_not_allowed"),  # CDN hosts too
    ],
)
def test_local_base_still_refuses_other_schemes_and_private_hosts(url, why):
    assert reason(LOCAL, url) == why


def test_private_addresses_refused_even_when_configured_as_hosts():
    policy = UrlPolicy.build(
        base_url="http://127.0.0.1:1",
        extra_hosts="10.0.0.5, 169.254.169.254,[::ffff:10.0.0.1],224.0.0.1,0.0.0.0, 93.184.216.34",
    )
    assert str(policy.check("http://10.0.0.5/a")) == "address_not_allowed: 10.0.0.5 (private)"
    assert str(policy.check("http://169.254.169.254/")).endswith("(link_local)")
    assert str(policy.check("http://[::ffff:10.0.0.1]/")).endswith("(private)")
    assert str(policy.check("http://224.0.0.1/")).endswith("(multicast)")
    assert str(policy.check("http://0.0.0.0/")).endswith("(unspecified)")
    assert policy.check("http://93.184.216.34/a.jpg") is None  # a public literal, listed


def test_extra_hosts_from_settings():
    policy = UrlPolicy.from_settings(
        Settings(
            {
                "XHS_BASE_URL": "https://www.xiaohongshu.com",
                "XHS_IMAGE_HOSTS": " img.example.com , *.cdn.example.org,",
            }
        )
    )
    assert policy.allow_loopback is False
    assert policy.check("https://IMG.example.com/a.jpg") is None
    assert policy.check("https://a.b.cdn.example.org/a.jpg") is None
    assert reason(policy, "https://cdn.example.org.evil.test/a.jpg") == "host_not_allowed"
    assert reason(policy, "https://other.example.com/a.jpg") == "host_not_allowed"
    assert policy.check("https://sns-img-bd.xhscdn.com/x") is None  # defaults stay
    assert reason(policy, "https://img.example.com:8080/a.jpg") == "port_not_allowed"


@pytest.mark.parametrize(
    ("base", "local"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://127.5.6.7", True),
        ("http://localhost:3000/", True),
        ("http://[::1]:8080", True),
        ("https://www.xiaohongshu.com", False),
        ("http://10.0.0.2:8080", False),
        ("http://localhost.evil.com", False),
        ("", False),
    ],
)
def test_is_local_base(base, local):
    assert is_local_base(base) is local


def test_address_kind():
    import ipaddress

    assert address_kind(ipaddress.ip_address("8.8.8.8")) is None
    assert address_kind(ipaddress.ip_address("100.64.0.1")) == "not_global"
    assert address_kind(ipaddress.ip_address("fe80::1")) == "link_local"
    assert address_kind(ipaddress.ip_address("fc00::1")) == "private"


# --- DNS ---------------------------------------------------------------------------------


def fake_resolver(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


async def test_allowed_host_resolving_to_private_addresses_is_refused():
    resolver = fake_resolver(
        {
            "sns-img-bd.xhscdn.com": ["10.0.0.5"],
            "ci.xiaohongshu.com": ["93.184.216.34", "127.0.0.1"],  # one bad is enough
            "sns-webpic-qc.xhscdn.com": ["93.184.216.34", "2606:2800:220:1::1"],
        }
    )
    refusal = await REMOTE.check_resolved("https://sns-img-bd.xhscdn.com/t", resolver)
    assert str(refusal) == "address_not_allowed: sns-img-bd.xhscdn.com -> 10.0.0.5 (private)"
    refusal = await REMOTE.check_resolved("https://ci.xiaohongshu.com/t", resolver)
    assert refusal is not None and refusal.reason == "address_not_allowed"
    assert await REMOTE.check_resolved("http://sns-webpic-qc.xhscdn.com/t", resolver) is None
    refusal = await REMOTE.check_resolved("https://sns-img-qc.xhscdn.com/t", resolver)
    assert refusal is not None and refusal.reason == "dns_error"


async def test_resolver_not_called_for_refused_urls_or_literal_ips():
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["93.184.216.34"]

    assert (await REMOTE.check_resolved("file:///etc/passwd", resolver)).reason == (
        "scheme_not_allowed"
    )
    assert await LOCAL.check_resolved("http://127.0.0.1:1/a", resolver) is None
    assert calls == []


async def test_real_dns_localhost_as_an_allowed_name():
    """``localhost`` listed as an image host still resolves to loopback: refused unless
    the base is local (system resolver, getaddrinfo off the event loop)."""
    remote = UrlPolicy.build(base_url="https://www.xiaohongshu.com", extra_hosts="localhost")
    refusal = await remote.check_resolved("http://localhost/a.jpg")
    assert refusal is not None and refusal.reason == "address_not_allowed"
    assert remote.check("http://localhost:9/a.jpg").reason == "port_not_allowed"
    assert "(loopback)" in refusal.detail
    local = UrlPolicy.build(base_url="http://localhost:8080", extra_hosts="localhost")
    assert await local.check_resolved("http://localhost:9/a.jpg") is None


def test_check_addresses_is_pure():
    assert REMOTE.check_addresses("h", []).reason == "dns_error"
    assert REMOTE.check_addresses("h", ["not-an-ip"]).reason == "dns_error"
    assert REMOTE.check_addresses("h", ["93.184.216.34"]) is None
    assert LOCAL.check_addresses("h", ["127.0.0.1", "::1"]) is None
    assert LOCAL.check_addresses("h", ["127.0.0.1", "10.1.1.1"]).reason == "address_not_allowed"
