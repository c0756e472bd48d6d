"""Which URLs the crawler may fetch media from.

Image and video URLs come from pages and API answers, that is from whoever wrote the
note or controls a redirect: a URL such as ``http://169.254.169.254/…`` or
``http://10.0.0.5/admin`` must never make the crawler send a request (SSRF). The
policy:

* only ``http`` and ``https`` (``file:``, ``data:``, ``ftp:`` … are refused), no
  credentials in the URL;
* only allowed hosts: the XHS image/video CDN hosts, any ``*.xhscdn.com`` host, plus
  the hosts of the ``XHS_IMAGE_HOSTS`` setting (``host`` or ``*.suffix`` entries), and
  those on their scheme's usual port only (80 for http, 443 for https);
* never an address that is private, loopback, link-local, unspecified, multicast or
  otherwise not global, whether written literally or resolved from a host name;
* except loopback (``127.0.0.0/8``, ``::1``, ``localhost``) when ``XHS_BASE_URL`` is
  itself on loopback: the offline sandbox serves its pictures from 127.0.0.1 (on any
  port: the sandbox picks free ones).

``UrlPolicy.check`` and ``UrlPolicy.check_addresses`` are pure;
``UrlPolicy.check_resolved`` adds the DNS lookup (off the event loop).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

DEFAULT_IMAGE_HOSTS: frozenset[str] = frozenset(
    {
        "sns-webpic-qc.xhscdn.com",
        "sns-webpic.xhscdn.com",
        "sns-img-qc.xhscdn.com",
        "sns-img-bd.xhscdn.com",
        "sns-img-hw.xhscdn.com",
        "ci.xiaohongshu.com",
        "sns-video-bd.xhscdn.com",
    }
)
DEFAULT_HOST_SUFFIXES: tuple[str, ...] = (".xhscdn.com",)
ALLOWED_SCHEMES = frozenset({"http", "https"})
USUAL_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = frozenset({"localhost"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> addresses``; raises ``OSError`` when the name does not resolve.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class SettingsLike(Protocol):
    def get(self, name: str, default: Any = None) -> Any: ...


@dataclass(frozen=True)
class Refusal:
    """Why a URL must not be fetched: a stats key and a short detail (no secrets:
    only the scheme, host or address)."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def _normalize_host(host: str) -> str:
    """Lower-case ASCII form of a host name (IDNA for non-ASCII), no trailing dot."""
    host = host.strip().lower().rstrip(".")
    if host.isascii():
        return host
    return host.encode("idna").decode("ascii")


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def address_kind(addr: IPAddress) -> str | None:
    """``None`` for a public address, else what it is (``loopback``, ``private`` …).
    IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``) are judged as the IPv4 one."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    checks = (
        ("unspecified", addr.is_unspecified),
        ("loopback", addr.is_loopback),
        ("link_local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("private", addr.is_private),
        ("reserved", addr.is_reserved),
        ("not_global", not addr.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def is_local_base(base_url: str) -> bool:
    """True when the site base URL is on loopback (the sandbox, a local copy)."""
    try:
        host = urlsplit(base_url).hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    addr = _parse_ip(host)
    return addr is not None and address_kind(addr) == "loopback"


def _split_host_entries(entries: str | Iterable[str]) -> list[str]:
    items = entries.split(",") if isinstance(entries, str) else list(entries)
    return [e.strip() for e in items if e and e.strip()]


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses of ``host`` via ``getaddrinfo`` in the loop's thread pool."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class UrlPolicy:
    hosts: frozenset[str] = DEFAULT_IMAGE_HOSTS
    suffixes: tuple[str, ...] = DEFAULT_HOST_SUFFIXES
    allow_loopback: bool = False

    @classmethod
    def build(cls, *, base_url: str, extra_hosts: str | Iterable[str] = ()) -> UrlPolicy:
        """Defaults plus ``extra_hosts`` entries (``host`` or ``*.suffix``)."""
        hosts = set(DEFAULT_IMAGE_HOSTS)
        suffixes = list(DEFAULT_HOST_SUFFIXES)
        for entry in _split_host_entries(extra_hosts):
            if entry.startswith(("*.", ".")):
                suffix = "." + _normalize_host(entry.lstrip("*."))
                if suffix not in suffixes:
                    suffixes.append(suffix)
            else:
                hosts.add(_normalize_host(entry.strip("[]")))
        return cls(frozenset(hosts), tuple(suffixes), is_local_base(base_url))

    @classmethod
    def from_settings(cls, settings: SettingsLike) -> UrlPolicy:
        """From ``XHS_BASE_URL`` and ``XHS_IMAGE_HOSTS`` (a Scrapy ``Settings`` or a dict)."""
        return cls.build(
            base_url=str(settings.get("XHS_BASE_URL") or ""),
            extra_hosts=settings.get("XHS_IMAGE_HOSTS") or (),
        )

    def _listed(self, host: str) -> bool:
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def _local_host(self, host: str, addr: IPAddress | None) -> bool:
        """A loopback host allowed because the site itself is local (any port)."""
        if not self.allow_loopback:
            return False
        if addr is not None:
            return address_kind(addr) == "loopback"
        return host in _LOOPBACK_NAMES or host.endswith(".localhost")

    def _address_refusal(self, addr: IPAddress) -> Refusal | None:
        kind = address_kind(addr)
        if kind is None or (kind == "loopback" and self.allow_loopback):
            return None
        return Refusal("address_not_allowed", f"{addr} ({kind})")

    def check(self, url: str) -> Refusal | None:
        """``None`` when ``url`` may be fetched as far as the URL text tells, else the
        refusal. Host names still need ``check_addresses`` for what they resolve to."""
        try:
            parts = urlsplit(url.strip())
            raw_host = parts.hostname
            port = parts.port  # raises ValueError on a malformed port
        except ValueError as exc:
            return Refusal("invalid_url", str(exc)[:80])
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            return Refusal("scheme_not_allowed", scheme or "none")
        if parts.username is not None or parts.password is not None:
            return Refusal("credentials_in_url", raw_host or "")
        if not raw_host:
            return Refusal("invalid_url", "no host")
        try:
            host = _normalize_host(raw_host)
        except UnicodeError:
            return Refusal("invalid_url", "bad host name")
        addr = _parse_ip(host)
        local = self._local_host(host, addr)
        if not local and not self._listed(host):
            return Refusal("host_not_allowed", host)
        if not local and port is not None and port != USUAL_PORTS[scheme]:
            return Refusal("port_not_allowed", f"{host}:{port}")
        return self._address_refusal(addr) if addr is not None else None

    def check_addresses(self, host: str, addresses: Iterable[str]) -> Refusal | None:
        """Refuse when ``host`` resolved to nothing or to any non-public address
        (one bad address is enough: the connection may pick it)."""
        parsed = [_parse_ip(a) for a in addresses]
        if not parsed:
            return Refusal("dns_error", f"{host} has no address")
        for addr in parsed:
            if addr is None:
                return Refusal("dns_error", f"{host} resolved to a non-address")
            refusal = self._address_refusal(addr)
            if refusal is not None:
                return Refusal(refusal.reason, f"{host} -> {refusal.detail}")
        return None

    async def check_resolved(
        self, url: str, resolver: Resolver = system_resolver
    ) -> Refusal | None:
        """``check`` plus the DNS lookup of a host name (literal IPs need none)."""
        refusal = self.check(url)
        if refusal is not None:
            return refusal
        parts = urlsplit(url.strip())
        host = _normalize_host(parts.hostname or "")
        if _parse_ip(host) is not None:
            return None
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            addresses = await resolver(host, port)
        except OSError as exc:
            return Refusal("dns_error", f"{host}: {exc.strerror or exc}"[:120])
        return self.check_addresses(host, addresses)
