"""Every knob checked once, at the start of a crawl: a bad value is one `ConfigError`.

The crawl command calls :func:`validate_settings` before anything starts (no log, no
browser, no database); it turns the error into one line on stderr and exit status 2.
Three layers, in order, each naming the knob and the bad value (a secret's value never:
its fingerprint):

1. **Types**, from the declared defaults (``crawler.settings.knob_defaults``): a knob
   declared with an int, float or bool default must read as one through Scrapy's
   ``getint`` / ``getfloat`` / ``getbool`` (env vars arrive as strings).
2. **Ranges and forms** of the app layer's knobs, the :data:`CHECKS` table: knob →
   check, for what a type does not say (at least 1, a ``redis://`` URL).
3. **Components' own parsers**, run once here on the same settings so that their errors
   surface before the crawl: :class:`~crawler.config.CrawlConfig` (site URL, cookies,
   image templates), ``crawler.comments.settings.CommentSettings`` (thread budgets,
   privacy), ``pipelines.mongo.MongoSettings`` (``MONGO_URI``, batch sizes),
   ``pipelines.enrichment.EnrichSettings`` (backend, concurrency, budgets),
   ``pipelines.media.MediaSettings`` (size caps, timeouts) and
   ``pipelines.gemini.settings.GeminiSettings`` (keys, model list, limits). Their
   ``ValueError`` (the pipelines may not import this layer, so they raise their own
   subclasses) becomes a ``ConfigError`` with the same message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from scrapy.settings import BaseSettings

from crawler.comments.settings import CommentSettings
from crawler.config import ConfigError, CrawlConfig, secret_fingerprint

# Knobs whose values are secrets (or may carry one, like a URI's password).
SECRET_KNOBS = frozenset(
    {
        "XHS_COOKIES",
        "GEMINI_API_KEYS",
        "GEMINI_API_KEY",
        "MONGO_URI",
        "REDIS_URL",
        "WEB_TOKEN",
        "PRIVACY_KEY",
    }
)


def shown(name: str, value: Any) -> str:
    """How a knob's value appears in an error: itself (cut), or a secret's fingerprint."""
    if name in SECRET_KNOBS:
        return f"<secret, fingerprint {secret_fingerprint(str(value))}>"
    return repr(str(value)[:100])


def _at_least(minimum: float) -> Callable[[str, BaseSettings], None]:
    def check(name: str, settings: BaseSettings) -> None:
        if settings.getfloat(name) < minimum:
            raise ConfigError(
                f"{name} must be at least {minimum:g}, got {shown(name, settings[name])}"
            )

    return check


def _url_or_empty(*schemes: str) -> Callable[[str, BaseSettings], None]:
    def check(name: str, settings: BaseSettings) -> None:
        value = str(settings.get(name) or "").strip()
        if not value:
            return
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ConfigError(
                f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL, "
                f"got {shown(name, value)}"
            )

    return check


# knob → check, for the app layer's knobs whose default's type does not say enough. The
# pipelines' knobs (MONGO_*, ENRICH_*, MEDIA_*, GEMINI_*) are checked by their own settings
# classes, run by _components below.
CHECKS: dict[str, Callable[[str, BaseSettings], None]] = {
    "REDIS_URL": _url_or_empty("redis", "rediss", "unix"),
    "GEMINI_BASE_URL": _url_or_empty("http", "https"),
    "ANTIBOT_COOLDOWN": _at_least(0),
    "ANTIBOT_MAX_RETRIES": _at_least(0),
    "DISCOVERY_WAIT": _at_least(0),
    "DISCOVERY_IDLE_ROUNDS": _at_least(1),
    "DISCOVERY_MAX_RELOADS": _at_least(0),
    "XHS_MAX_PAGE_BYTES": _at_least(1),
    "GC_GEN0_THRESHOLD": _at_least(0),
    "RUN_LEASE_TTL": _at_least(1),
    "DISTRIBUTED_IDLE_TIMEOUT": _at_least(0),
}

_READERS: dict[type, tuple[str, str]] = {
    bool: ("getbool", "true or false (1/0)"),
    int: ("getint", "a whole number"),
    float: ("getfloat", "a number"),
}


def check_types(settings: BaseSettings, defaults: Mapping[str, Any]) -> None:
    """Each knob reads as the type of its declared default."""
    for name, default in defaults.items():
        reader = _READERS.get(type(default))
        if reader is None:
            continue
        method, words = reader
        try:
            value = getattr(settings, method)(name)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{name} must be {words}, got {shown(name, settings[name])}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {shown(name, settings[name])}")


def _components(settings: BaseSettings) -> None:
    """The components' own settings parsers, once, on these settings."""
    # Imported here: the pipelines' settings modules pull in their SDKs.
    from pipelines.enrichment import EnrichSettings
    from pipelines.enrichment.pack_queue import PackSettings
    from pipelines.gemini.settings import GeminiSettings
    from pipelines.media import MediaSettings
    from pipelines.mongo import MongoSettings

    CrawlConfig.from_settings(settings)
    EnrichSettings.from_settings(settings)
    PackSettings.from_settings(settings)
    MediaSettings.from_settings(settings)
    CommentSettings.from_settings(settings)
    MongoSettings.from_settings(settings)
    GeminiSettings.from_env_like(settings)


def validate_settings(settings: BaseSettings, defaults: Mapping[str, Any] | None = None) -> None:
    """Raise ConfigError for the first knob in ``settings`` whose value cannot be used."""
    if defaults is None:
        from crawler.settings import knob_defaults as defaults
    check_types(settings, defaults)
    for name, check in CHECKS.items():
        check(name, settings)
    try:
        _components(settings)
    except ConfigError:
        raise
    except ValueError as exc:  # a pipeline's settings error: its message names the knob
        raise ConfigError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
