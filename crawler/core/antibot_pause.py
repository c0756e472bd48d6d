"""The crawl's one anti-bot pause: a captcha anywhere quiets everything the crawl sends.

The engine's HTTP requests and the browser's comment pages carry the same cookie, so
the site sees one client: a captcha answered to either must quiet both. Whoever meets
one calls :meth:`AntiBotPause.hold` (``AntiBotPause.of(crawler)``, one per crawler):

- the engine is paused (no request leaves the scheduler: note pages, profiles, images,
  the comment threads' page loads) for ``ANTIBOT_COOLDOWN`` seconds; a captcha during
  the pause extends it, and the engine resumes by itself when it is over;
- the browser readers ask :meth:`AntiBotPause.wait` before each action (a scroll, a
  click, a reload: each makes the page call the API), so they stay quiet as long.

Stats: ``antibot/pauses`` (pauses started), ``antibot/pauses/<source>`` (every captcha
that started or extended one, by who met it: ``http`` for the engine's requests,
``listing`` for the search and profile pages in Chromium, ``comments`` for the comment
pages).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

logger = logging.getLogger(__name__)


class Engine(Protocol):
    def pause(self) -> None: ...
    def unpause(self) -> None: ...


class Stats(Protocol):
    def inc_value(self, key: str, count: int = 1) -> None: ...


class AntiBotPause:
    def __init__(
        self,
        cooldown: float,
        *,
        engine: Callable[[], Engine | None] = lambda: None,
        stats: Callable[[], Stats | None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.cooldown = cooldown
        self._engine = engine
        self._stats = stats
        self._monotonic = monotonic
        self._sleep = sleep
        self._until = 0.0  # monotonic end of the pause
        self._resume_handle: asyncio.TimerHandle | None = None

    _registry: ClassVar[weakref.WeakKeyDictionary[Any, AntiBotPause]] = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, crawler: Any) -> AntiBotPause:
        """The pause of ``crawler`` (a Scrapy crawler), created on first use."""
        pause = cls._registry.get(crawler)
        if pause is None:
            pause = cls._registry[crawler] = cls(
                crawler.settings.getfloat("ANTIBOT_COOLDOWN"),
                engine=lambda: crawler.engine,
                stats=lambda: crawler.stats,  # both set only once the crawl starts
            )
        return pause

    @property
    def holding(self) -> bool:
        return self._until > self._monotonic()

    def remaining(self) -> float:
        """Seconds the pause still lasts (0: none)."""
        return max(0.0, self._until - self._monotonic())

    def hold(self, source: str, seconds: float | None = None) -> None:
        """A captcha was answered to ``source``: pause everything for ``seconds``
        (default ``cooldown``) from now, or longer if a pause already lasts longer."""
        seconds = self.cooldown if seconds is None else seconds
        now = self._monotonic()
        started = self._until <= now
        self._until = max(self._until, now + seconds)
        self._count(f"antibot/pauses/{source}")
        if started:
            self._count("antibot/pauses")
            logger.warning(
                "Captcha answered (%s): pausing requests and comment pages for %.0f s",
                source,
                seconds,
            )
        engine = self._engine()
        if engine is None:
            return
        engine.pause()
        if self._resume_handle is not None:
            self._resume_handle.cancel()
        loop = asyncio.get_running_loop()
        self._resume_handle = loop.call_later(self._until - now, self._resume)

    def _resume(self) -> None:
        self._resume_handle = None
        left = self.remaining()
        if left > 0:  # extended by a clock other than the loop's
            self._resume_handle = asyncio.get_running_loop().call_later(left, self._resume)
            return
        engine = self._engine()
        if engine is not None:
            engine.unpause()
        logger.info("Cool-down over, resuming requests")

    async def wait(self) -> None:
        """Until the pause is over (at once when there is none)."""
        while (left := self._until - self._monotonic()) > 0:
            await self._sleep(left)

    def _count(self, key: str) -> None:
        stats = self._stats()
        if stats is not None:
            stats.inc_value(key)
