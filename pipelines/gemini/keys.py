"""API keys grouped by Google Cloud project.

Gemini quotas belong to the project, not to the key: two keys of one project share one
budget, so routing works on projects and a key is only the credential used to reach one.
A key is only ever shown as its fingerprint; the secret itself never reaches ``repr``,
``str``, logs, exceptions or persisted state.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_FINGERPRINT_PREFIX = "k:"
# Google API keys ("AIza" + 35 url-safe characters) and `key=` query parameters.
_KEY_LIKE = re.compile(r"AIza[0-9A-Za-z_\-]{35}")
_KEY_PARAM = re.compile(r"([?&]key=)[^&\s'\"]+", re.IGNORECASE)


def key_fingerprint(key: str) -> str:
    """The only form in which a key is logged or stored: ``k:`` + 8 hex of its SHA-256."""
    return _FINGERPRINT_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class ApiKey:
    """One credential and the project whose quota it spends.

    ``secret`` is excluded from ``repr``/``str``/equality display; use ``fingerprint``
    wherever a key has to be named.
    """

    project: str
    secret: str = field(repr=False)
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", key_fingerprint(self.secret))

    def __str__(self) -> str:
        return f"{self.fingerprint}@{self.project}"


def solo_project_name(key: str) -> str:
    """Project name for a key configured without one: the key is its own project."""
    return f"solo-{key_fingerprint(key)}"


def parse_keys(keys_spec: str = "", single_key: str = "") -> tuple[ApiKey, ...]:
    """Parse ``GEMINI_API_KEYS`` (``projA:key1,projA:key2,projB:key3``) and ``GEMINI_API_KEY``.

    A key without a ``project:`` prefix is its own project. Google keys contain no
    ``:``, so the last colon separates project and key. Duplicates are dropped (first
    occurrence wins) so one key is never counted twice.
    """
    entries = [e.strip() for e in keys_spec.split(",")]
    if single_key.strip():
        entries.append(single_key.strip())
    keys: list[ApiKey] = []
    seen: set[str] = set()
    for entry in entries:
        if not entry:
            continue
        project, _, secret = entry.rpartition(":")
        project, secret = project.strip(), secret.strip()
        if not secret or secret in seen:
            continue
        seen.add(secret)
        keys.append(ApiKey(project=project or solo_project_name(secret), secret=secret))
    return tuple(keys)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret by its fingerprint and mask key-like tokens.

    Used on every message that leaves the client (logs, exception reasons), because SDK
    and transport errors may quote a URL carrying ``?key=``.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, key_fingerprint(secret))
    text = _KEY_PARAM.sub(r"\1<redacted>", text)
    return _KEY_LIKE.sub("<redacted-key>", text)
