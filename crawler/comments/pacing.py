"""The pace of the comment pages of one crawl: the crawl's pause and action spacing.

A captcha on one page pauses the whole crawl for ``cooldown`` seconds
(:class:`~crawler.core.antibot_pause.AntiBotPause`, the pause the engine's requests
take after a captcha too: both carry the same cookie), and every page waits it out
before its next action; a captcha answered to the engine's requests quiets the pages
the same way. A captcha on a page also doubles the spacing between the pages' actions
(scrolls, clicks: each makes the page call the API), from ``MIN_SPACING`` up to
``MAX_SPACING`` seconds; every good answer shrinks it again by ``RELAX``, until it is
back to none. So a crawl that met a captcha slows down to what the site tolerates, and
speeds up again while it is left alone (additive-increase/multiplicative-decrease, as
TCP and Scrapy's AutoThrottle do it, the other way round).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from crawler.core.antibot_pause import AntiBotPause

MIN_SPACING = 0.1  # seconds between actions after a first captcha
MAX_SPACING = 3.0
RELAX = 0.9  # spacing factor per good answer
SOURCE = "comments"  # who met the captcha, in antibot/pauses/<source>


class Pacer:
    def __init__(
        self,
        pause: AntiBotPause | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        """``pause``: the crawl's pause (``AntiBotPause.of(crawler)``); without one, a
        pause of these pages only (a reader outside a crawl)."""
        self._monotonic = monotonic
        self._sleep = sleep
        self.pause = pause or AntiBotPause(0.0, monotonic=monotonic, sleep=sleep)
        self._next = 0.0  # the next free action slot
        self.spacing = 0.0

    @property
    def holding(self) -> bool:
        return self.pause.holding

    def captcha(self, cooldown: float) -> None:
        """A captcha was answered: pause for ``cooldown`` s, then space actions wider."""
        self.pause.hold(SOURCE, cooldown)
        self.spacing = min(MAX_SPACING, max(MIN_SPACING, self.spacing * 2))

    def relax(self) -> None:
        """A good answer: space actions a little closer."""
        self.spacing *= RELAX
        if self.spacing < MIN_SPACING / 4:
            self.spacing = 0.0

    async def wait(self) -> None:
        """Until the pause is over (no slot taken)."""
        await self.pause.wait()

    async def turn(self) -> None:
        """Until this caller may act: after the pause, one spacing after the last."""
        await self.wait()
        now = self._monotonic()
        slot = max(now, self._next)
        self._next = slot + self.spacing
        if slot > now:
            await self._sleep(slot - now)
        await self.wait()  # a captcha may have come meanwhile
