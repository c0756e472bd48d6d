"""The web app's settings, read once into a frozen dataclass and checked before serving.

Binding rule: the app serves 127.0.0.1 (or another loopback address) without a token.
Any other address needs ``WEB_TOKEN``; :meth:`WebConfig.check` refuses the combination
"reachable from elsewhere, no token" with a one-line message. A configured token is
always enforced, whatever the address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.mongo import MongoSettings


class WebConfigError(ValueError):
    """A setting of the web app that cannot work (message names the setting)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or a wildcard: reachable from elsewhere as far as we know


@dataclass(frozen=True)
class WebConfig:
    mongo: MongoSettings
    images_store: Path
    report_dir: Path | None
    host: str = "127.0.0.1"
    port: int = 8080
    token: str = ""
    page_size: int = 50

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> WebConfig:
        report_dir = settings.get("RUN_REPORT_DIR")
        values: dict[str, Any] = {
            "mongo": MongoSettings.from_settings(settings),
            "images_store": Path(settings.get("IMAGES_STORE")),
            "report_dir": Path(report_dir) if report_dir else None,
            "host": settings.get("WEB_HOST"),
            "port": settings.getint("WEB_PORT"),
            "token": settings.get("WEB_TOKEN") or "",
            "page_size": settings.getint("WEB_PAGE_SIZE"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).check()

    @property
    def token_required(self) -> bool:
        return bool(self.token)

    def check(self) -> WebConfig:
        if not is_loopback(self.host) and not self.token:
            raise WebConfigError(
                f"WEB_HOST={self.host!r} is reachable from other machines: set WEB_TOKEN "
                "(requests without it get 401) or bind 127.0.0.1"
            )
        if not 0 <= self.port <= 65535:
            raise WebConfigError(f"WEB_PORT={self.port} is not a TCP port")
        if self.page_size < 1:
            raise WebConfigError(f"WEB_PAGE_SIZE={self.page_size} must be at least 1")
        return self

    def __repr__(self) -> str:  # the token never appears in logs or tracebacks
        return (
            f"WebConfig(host={self.host!r}, port={self.port}, "
            f"token={'***' if self.token else ''!r}, images_store={str(self.images_store)!r})"
        )
