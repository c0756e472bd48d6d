"""The crawler's own settings, read once from Scrapy settings into a typed dataclass."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

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
        base_url = settings.get("XHS_BASE_URL", "").rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"XHS_BASE_URL must be an http(s) URL, got {base_url[:100]!r}")
        templates = tuple(settings.getlist("XHS_IMAGE_ORIGIN_TEMPLATES"))
        for template in templates:
            if "{token}" not in template:
                raise ConfigError(f"XHS_IMAGE_ORIGIN_TEMPLATES entry lacks {{token}}: {template!r}")
        return cls(
            base_url=base_url,
            cookies=parse_cookie_header(settings.get("XHS_COOKIES", "")),
            original_templates=templates,
            antibot_cooldown=settings.getfloat("ANTIBOT_COOLDOWN", 60.0),
            antibot_max_retries=settings.getint("ANTIBOT_MAX_RETRIES", 5),
            discovery_wait=settings.getfloat("DISCOVERY_WAIT", 5.0),
            discovery_idle_rounds=settings.getint("DISCOVERY_IDLE_ROUNDS", 3),
            discovery_max_reloads=settings.getint("DISCOVERY_MAX_RELOADS", 8),
            max_page_bytes=settings.getint("XHS_MAX_PAGE_BYTES", 16 * 1024 * 1024),
        )

    @property
    def cookie_fingerprint(self) -> str:
        joined = "; ".join(f"{k}={v}" for k, v in sorted(self.cookies.items()))
        return secret_fingerprint(joined) if joined else "none"
