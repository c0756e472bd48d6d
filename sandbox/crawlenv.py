"""The environment of a `scrapy crawl` pointed at the sandbox site.

Shared by the demo, the tests and the benchmarks so that all three run the crawler the
same way: the site's URL, its login cookie, its CDN as the original-image origin.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sandbox.site.server import DEFAULT_COOKIE

SANDBOX_COOKIES = "; ".join(f"{name}={value}" for name, value in DEFAULT_COOKIE.items())
# Variables that could point a crawl at a real service (Gemini, MongoDB, Redis, XHS).
REAL_SERVICE_PREFIXES = ("GEMINI_", "GOOGLE_", "MONGO_", "REDIS_", "XHS_", "ENRICH_")


def isolated_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`environ` without anything that could reach a real service (tests, benchmarks)."""
    return {k: v for k, v in environ.items() if not k.startswith(REAL_SERVICE_PREFIXES)}


def crawl_env(site: Any, base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """`base` plus what points a crawl at `site` (anything with `.url` and `.cdn_url`;
    a `.short_url`, the share-link host, becomes XHS_SHORT_LINK_HOSTS)."""
    short_url = getattr(site, "short_url", None)
    short = {"XHS_SHORT_LINK_HOSTS": short_url.partition("//")[2]} if short_url else {}
    return {
        **base,
        "XHS_BASE_URL": site.url,
        "XHS_COOKIES": SANDBOX_COOKIES,
        "XHS_IMAGE_ORIGIN_TEMPLATES": f"{site.cdn_url}/{{token}}",
        **short,
        **extra,
    }
