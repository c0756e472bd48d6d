"""What storage and the Mongo handle read from the Scrapy settings, once, validated.

Every knob and its default is declared in ``crawler/settings.py`` (env vars of the same
name override); :meth:`MongoSettings.from_settings` reads them without repeating a
default and raises :class:`MongoSettingsError` (a ``ValueError`` whose message names
the setting) for a value it cannot use. Also here: :func:`mask_uri`, the only form a
URI is ever logged or shown in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

URI_SCHEMES = ("mongodb://", "mongodb+srv://")


class MongoSettingsError(ValueError):
    """A MONGO_* setting whose value cannot be used; the message names the setting."""


@dataclass(frozen=True)
class MongoSettings:
    uri: str  # MONGO_URI; empty → embedded server on data_dir
    database: str  # MONGO_DATABASE
    data_dir: str  # MONGO_DATA_DIR
    embedded_host: str  # MONGO_EMBEDDED_HOST
    embedded_port: int  # MONGO_EMBEDDED_PORT; 0 = any free port
    embedded_wait_s: float  # MONGO_EMBEDDED_WAIT: wait for another owner's server
    batch_size: int  # MONGO_BATCH_SIZE: units per bulk_write
    flush_interval_s: float  # MONGO_FLUSH_INTERVAL: max age of a buffered unit
    spool_path: str  # MONGO_SPOOL_PATH
    retry_times: int  # MONGO_RETRY_TIMES: retries of a batch on transient errors
    retry_backoff_s: float  # MONGO_RETRY_BACKOFF: first delay, doubled each retry
    retry_backoff_max_s: float  # MONGO_RETRY_BACKOFF_MAX
    server_selection_timeout_ms: int  # MONGO_SERVER_SELECTION_TIMEOUT_MS
    socket_timeout_ms: int  # MONGO_SOCKET_TIMEOUT_MS
    probe_interval_s: float  # MONGO_PROBE_INTERVAL: re-check a down database
    max_string_chars: int  # MONGO_MAX_STRING_CHARS: longer strings truncated

    @classmethod
    def from_settings(cls, settings: Any) -> MongoSettings:
        """Read from Scrapy settings (a ``BaseSettings`` holding the project's knobs)."""
        read = _Reader(settings)
        uri = read.text("MONGO_URI").strip()
        if uri and not uri.startswith(URI_SCHEMES):
            raise MongoSettingsError(
                f"MONGO_URI is not a mongodb:// or mongodb+srv:// URI (got {mask_uri(uri)!r}); "
                "leave it empty for the embedded server"
            )
        if uri and not uri.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]:
            raise MongoSettingsError(f"MONGO_URI names no host (got {mask_uri(uri)!r})")
        return cls(
            uri=uri,
            database=read.text("MONGO_DATABASE", nonempty=True),
            data_dir=read.text("MONGO_DATA_DIR", nonempty=True),
            embedded_host=read.text("MONGO_EMBEDDED_HOST", nonempty=True),
            embedded_port=read.number("MONGO_EMBEDDED_PORT", int, 0, 65535),
            embedded_wait_s=read.number("MONGO_EMBEDDED_WAIT", float, 0),
            batch_size=read.number("MONGO_BATCH_SIZE", int, 1),
            flush_interval_s=read.number("MONGO_FLUSH_INTERVAL", float, 0),
            spool_path=read.text("MONGO_SPOOL_PATH", nonempty=True),
            retry_times=read.number("MONGO_RETRY_TIMES", int, 0),
            retry_backoff_s=read.number("MONGO_RETRY_BACKOFF", float, 0),
            retry_backoff_max_s=read.number("MONGO_RETRY_BACKOFF_MAX", float, 0),
            server_selection_timeout_ms=read.number("MONGO_SERVER_SELECTION_TIMEOUT_MS", int, 1),
            socket_timeout_ms=read.number("MONGO_SOCKET_TIMEOUT_MS", int, 1),
            probe_interval_s=read.number("MONGO_PROBE_INTERVAL", float, 0),
            max_string_chars=read.number("MONGO_MAX_STRING_CHARS", int, 1),
        )


class _Reader:
    """Typed reads of declared knobs; every failure names the setting."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings

    def _raw(self, name: str) -> Any:
        value = self._settings.get(name)
        if value is None:
            raise MongoSettingsError(
                f"{name} is not set (settings not loaded from crawler/settings.py?)"
            )
        return value

    def text(self, name: str, *, nonempty: bool = False) -> str:
        value = str(self._raw(name))
        if nonempty and not value.strip():
            raise MongoSettingsError(f"{name} must not be empty")
        return value

    def number(
        self, name: str, kind: Callable[[Any], Any], low: float, high: float | None = None
    ) -> Any:
        raw = self._raw(name)
        getter = self._settings.getint if kind is int else self._settings.getfloat
        try:
            value = getter(name)
        except (TypeError, ValueError):
            what = "an integer" if kind is int else "a number"
            raise MongoSettingsError(f"{name} must be {what} (got {raw!r})") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise MongoSettingsError(f"{name} must be {bound} (got {raw!r})")
        return value


_SECRET_QUERY_KEY = re.compile(r"pass|secret|token|key|authmechanismproperties", re.I)


def mask_uri(uri: str) -> str:
    """The URI with credentials masked: the only form a URI is ever logged in.

    ``mongodb://user:pw@h1,h2/db?authSource=admin&tlsCertificateKeyFilePassword=x``
    → ``mongodb://***@h1,h2/db?authSource=admin&tlsCertificateKeyFilePassword=***``.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "***"
    rest, qsep, query = rest.partition("?")
    hosts, slash, path = rest.partition("/")
    if "@" in hosts:
        hosts = "***@" + hosts.rsplit("@", 1)[1]
    masked = f"{scheme}://{hosts}{slash}{path}"
    if qsep:
        pairs = [
            (k, "***" if _SECRET_QUERY_KEY.search(k) else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        masked += "?" + urlencode(pairs, safe="*:/,")
    return masked
