"""Pure readings of a run's Scrapy stats: the run record's counts, the public arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scrapy import Spider

_SECRET_ARG_NAMES = {"key", "token", "cookie", "cookies", "secret", "password"}
_SECRET_ARG_SUFFIXES = ("_key", "_token", "_cookie", "_cookies", "_secret", "_password")


def sum_prefix(stats: Mapping[str, Any], prefix: str) -> int:
    return sum(v for k, v in stats.items() if k.startswith(prefix) and isinstance(v, int | float))


def _looks_secret(name: str) -> bool:
    name = name.lower()
    return name in _SECRET_ARG_NAMES or name.endswith(_SECRET_ARG_SUFFIXES)


def public_args(spider: Spider) -> dict[str, str]:
    """The spider's `-a` arguments, with anything secret-looking masked."""
    args = getattr(spider, "xhs_args", None) or {}
    return {k: ("***" if _looks_secret(k) else str(v)[:2000]) for k, v in args.items()}


def run_counts(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The counts a run record keeps (from Scrapy stats, by the pipelines' keys)."""

    def by_prefix(prefix: str) -> dict[str, int]:
        return {
            k[len(prefix) :]: v
            for k, v in sorted(stats.items())
            if k.startswith(prefix) and isinstance(v, int)
        }

    return {
        "notes": {
            "scraped": stats.get("item_scraped_count", 0),
            "new": stats.get("notes/new", 0),
            "changed": stats.get("notes/changed", 0),
            "unchanged": stats.get("notes/unchanged", 0),
            "pages": stats.get("response_received_count", 0),
        },
        "images": {
            "ok": stats.get("media/images_ok", 0),
            "failed": sum_prefix(stats, "media/images_failed/"),
            "skipped_existing": stats.get("media/skipped_existing", 0),
        },
        "enrichment": {
            "done": stats.get("enrich/done", 0),
            "deferred": stats.get("enrich/deferred", 0),
            "failed": sum_prefix(stats, "enrich/failed/"),
            "cache_hits": stats.get("enrich/cache_hits", 0),
        },
        "gemini": {
            "requests_by_model": by_prefix("gemini/requests/"),
            "requests_by_key": by_prefix("gemini/requests_by_key/"),
            "http_429_by_class": by_prefix("gemini/429/"),
            "tokens_in": stats.get("gemini/tokens_in", 0),
            "tokens_out": stats.get("gemini/tokens_out", 0),
        },
        "storage": {
            "upserted": stats.get("storage/upserted", 0),
            "modified": stats.get("storage/modified", 0),
            "spooled": stats.get("storage/spooled", 0),
            "replayed": stats.get("storage/replayed", 0),
            "retries": stats.get("storage/retries", 0),
            "superseded": stats.get("storage/superseded", 0),
            "embedded_takeover": stats.get("storage/embedded_takeover", 0),
        },
        "antibot": by_prefix("antibot/"),
        "errors_by_reason": {
            **by_prefix("xhs/parse_error/"),
            **{f"media/{k}": v for k, v in by_prefix("media/images_failed/").items()},
            **{f"enrich/{k}": v for k, v in by_prefix("enrich/failed/").items()},
            **{f"storage/{k}": v for k, v in by_prefix("storage/errors/").items()},
        },
    }
