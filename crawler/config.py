"""The crawler's own settings, read once from Scrapy settings into a typed dataclass.

Defaults live in crawler/settings.py only; this module parses and checks the values of
the site-facing knobs (``ConfigError`` names the knob). crawler/validation.py runs it,
with every other knob's check, once before a crawl starts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from scrapy.settings import BaseSettings


class ConfigError(ValueError):
    """A setting whose value cannot be used; the message names the setting."""


def parse_cookie_header(text: str) -> dict[str, str]:
    """`a1=…; web_session=…` → {"a1": …, "web_session": …} (values never logged)."""
    if not text.strip():
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(text)
    except CookieError as exc:
        raise ConfigError("XHS_COOKIES is not a cookie header of the form a=b; c=d") from exc
    cookies = {name: morsel.value for name, morsel in jar.items()}
    if not cookies:
        raise ConfigError("XHS_COOKIES is not a cookie header of the form a=b; c=d")
    return cookies


def parse_base_url(text: str) -> str:
    """XHS_BASE_URL: an http(s) URL with a host (``garbage`` and ``http://`` are not)."""
    base_url = text.strip().rstrip("/")
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"XHS_BASE_URL must be an http(s) URL with a host, got {text.strip()[:100]!r}"
        )
    return base_url


def parse_templates(entries: list[str]) -> tuple[str, ...]:
    """XHS_IMAGE_ORIGIN_TEMPLATES: http(s) URL templates, each with ``{token}``."""
    templates = tuple(entry.strip() for entry in entries if entry.strip())
    for template in templates:
        if "{token}" not in template:
            raise ConfigError(
                f"XHS_IMAGE_ORIGIN_TEMPLATES entry lacks {{token}}: {template[:100]!r}"
            )
        if urlsplit(template).scheme not in ("http", "https"):
            raise ConfigError(
                f"XHS_IMAGE_ORIGIN_TEMPLATES entry is not an http(s) URL: {template[:100]!r}"
            )
    return templates


def secret_fingerprint(secret: str) -> str:
    """A short, stable, non-reversible tag for a secret, the only form ever logged."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class CrawlConfig:
    base_url: str
    cookies: dict[str, str]
    original_templates: tuple[str, ...]
    antibot_cooldown: float  # seconds without new requests after a captcha
    antibot_max_retries: int  # per request, after captchas
    discovery_wait: float  # seconds to wait for the page's next API answer after a scroll
    discovery_idle_rounds: int  # scrolls without a new answer before a listing is done
    discovery_max_reloads: int  # page reloads after a rejected signature or a captcha
    max_page_bytes: int  # larger note pages are refused (PageTooLarge)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CrawlConfig:
        return cls(
            base_url=parse_base_url(settings.get("XHS_BASE_URL") or ""),
            cookies=parse_cookie_header(settings.get("XHS_COOKIES") or ""),
            original_templates=parse_templates(settings.getlist("XHS_IMAGE_ORIGIN_TEMPLATES")),
            antibot_cooldown=settings.getfloat("ANTIBOT_COOLDOWN"),
            antibot_max_retries=settings.getint("ANTIBOT_MAX_RETRIES"),
            discovery_wait=settings.getfloat("DISCOVERY_WAIT"),
            discovery_idle_rounds=settings.getint("DISCOVERY_IDLE_ROUNDS"),
            discovery_max_reloads=settings.getint("DISCOVERY_MAX_RELOADS"),
            max_page_bytes=settings.getint("XHS_MAX_PAGE_BYTES"),
        )

    @property
    def cookie_fingerprint(self) -> str:
        joined = "; ".join(f"{k}={v}" for k, v in sorted(self.cookies.items()))
        return secret_fingerprint(joined) if joined else "none"
