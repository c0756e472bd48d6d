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


class KeySpecError(ValueError):
    """A malformed key entry: ``setting`` is the variable, ``detail`` says what is wrong
    (by entry number and fingerprint: a malformed entry is never echoed, since which of
    its parts is the secret cannot be told)."""

    def __init__(self, setting: str, detail: str) -> None:
        self.setting = setting
        self.detail = detail
        super().__init__(f"{setting}: {detail}")


def _parse_entry(entry: str, setting: str, number: int) -> tuple[str, str]:
    """``project:key`` or ``key`` → (project or "", key), or KeySpecError."""
    where = f"entry {number}"
    if entry.count(":") > 1:
        raise KeySpecError(
            setting, f"{where} has {entry.count(':')} ':' (expected 'project:key' or 'key')"
        )
    project, _, secret = entry.rpartition(":")
    project, secret = project.strip(), secret.strip()
    if not secret:
        raise KeySpecError(setting, f"{where} has no key after its ':'")
    if any(ch.isspace() for ch in secret):
        raise KeySpecError(
            setting, f"{where}: the key ({key_fingerprint(secret)}) contains whitespace"
        )
    if any(ch.isspace() for ch in project):
        raise KeySpecError(setting, f"{where}: the project name contains whitespace")
    return project, secret


def parse_keys(keys_spec: str = "", single_key: str = "") -> tuple[ApiKey, ...]:
    """Parse ``GEMINI_API_KEYS`` (``projA:key1,projA:key2,projB:key3``) and ``GEMINI_API_KEY``.

    A key without a ``project:`` prefix (or with an empty one) is its own project.
    Google keys contain no ``:`` and no whitespace: an entry with two colons, an empty
    key or whitespace inside raises :class:`KeySpecError`; blank entries are skipped.
    Duplicates are dropped (first occurrence wins) so one key is never counted twice.
    """
    entries = [("GEMINI_API_KEYS", n, e.strip()) for n, e in enumerate(keys_spec.split(","), 1)]
    entries.append(("GEMINI_API_KEY", 1, single_key.strip()))
    keys: list[ApiKey] = []
    seen: set[str] = set()
    for setting, number, entry in entries:
        if not entry:
            continue
        project, secret = _parse_entry(entry, setting, number)
        if secret in seen:
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
