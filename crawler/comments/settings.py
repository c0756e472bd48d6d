"""What a crawl asks of comments: the spider's arguments and the knobs, parsed once.

- :class:`CommentLimits` from ``-a comments=N|all`` and ``-a replies=M|all`` (a bad
  value is a ``ValueError`` naming the argument; the spider raises it as its
  ``SpiderArgumentError``, one line and exit status 2);
- :class:`CommentSettings` from ``COMMENTS_*`` and ``PRIVACY``/``PRIVACY_KEY`` (a bad
  value is a :class:`~crawler.config.ConfigError`; ``crawler.validation`` runs this
  parser once before a crawl). Defaults live in ``crawler/settings.py`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from scrapy.settings import BaseSettings

from crawler.config import ConfigError

PRIVACY_MODES = ("off", "pseudonymize")


def _limit(name: str, value: str | int | None, default: int | None) -> int | None:
    """``N`` (>= 0) or ``all`` (None); absent or empty gives ``default``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    text = str(value).strip().lower()
    if text == "all":
        return None
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{name}= must be a whole number or 'all': {str(value)[:100]!r}") from None
    if number < 0:
        raise ValueError(f"{name}= must be 0 or more (or 'all'): {str(value)[:100]!r}")
    return number


@dataclass(frozen=True)
class CommentLimits:
    """Top-level comments per note and replies per top-level comment (None: all)."""

    comments: int | None = 0
    replies: int | None = 0

    @classmethod
    def parse(cls, comments: str | int | None, replies: str | int | None) -> CommentLimits:
        limits = cls(_limit("comments", comments, 0), _limit("replies", replies, 0))
        if limits.comments == 0 and replies not in (None, ""):
            raise ValueError("replies= needs comments= (N or all): replies are read with them")
        return limits

    @property
    def enabled(self) -> bool:
        return self.comments != 0

    def take_root(self, roots: int) -> bool:
        """Whether one more top-level comment is wanted after ``roots``."""
        return self.comments is None or roots < self.comments

    def take_reply(self, replies: int) -> bool:
        """Whether one more reply of a top-level comment is wanted after ``replies``."""
        return self.replies is None or replies < self.replies


@dataclass(frozen=True)
class CommentSettings:
    max_seconds: float  # per note
    max_pages: int  # comment API answers per note
    wait: float  # seconds for the page's next answer after an action
    max_reloads: int  # per note
    cooldown: float  # ANTIBOT_COOLDOWN: seconds before reloading after a captcha
    refresh: timedelta  # COMMENTS_REFRESH: a bucketed count's thread read again after this
    pseudonymize: bool
    privacy_key: bytes = field(repr=False)  # never logged, never stored

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CommentSettings:
        for name in ("COMMENTS_MAX_SECONDS", "COMMENTS_WAIT"):
            if settings.getfloat(name) <= 0:
                raise ConfigError(f"{name} must be above 0, got {settings.get(name)!r}")
        for name in ("COMMENTS_MAX_PAGES", "COMMENTS_MAX_RELOADS"):
            floor = 1 if name == "COMMENTS_MAX_PAGES" else 0
            if settings.getint(name) < floor:
                raise ConfigError(f"{name} must be at least {floor}, got {settings.get(name)!r}")
        if settings.getfloat("COMMENTS_REFRESH") < 0:
            raise ConfigError(
                f"COMMENTS_REFRESH must be 0 or more, got {settings.get('COMMENTS_REFRESH')!r}"
            )
        mode = str(settings.get("PRIVACY")).strip().lower()
        if mode not in PRIVACY_MODES:
            raise ConfigError(
                f"PRIVACY must be one of {'|'.join(PRIVACY_MODES)}, got {mode[:40]!r}"
            )
        key = str(settings.get("PRIVACY_KEY") or "")
        if mode == "pseudonymize" and len(key) < 16:
            raise ConfigError(
                "PRIVACY=pseudonymize needs PRIVACY_KEY, a secret of at least 16 characters "
                "(the key of the commenters' id hashes)"
            )
        return cls(
            max_seconds=settings.getfloat("COMMENTS_MAX_SECONDS"),
            max_pages=settings.getint("COMMENTS_MAX_PAGES"),
            wait=settings.getfloat("COMMENTS_WAIT"),
            max_reloads=settings.getint("COMMENTS_MAX_RELOADS"),
            cooldown=settings.getfloat("ANTIBOT_COOLDOWN"),
            refresh=timedelta(seconds=settings.getfloat("COMMENTS_REFRESH")),
            pseudonymize=mode == "pseudonymize",
            privacy_key=key.encode(),
        )
