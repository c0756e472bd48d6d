"""The pace of the comment pages of one crawl: a shared cool-down and action spacing.

A captcha on one page quiets every page for ``cooldown`` seconds (a page that kept
asking would prolong the block) and doubles the spacing between the pages' actions
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

MIN_SPACING = 0.1  # seconds between actions after a first captcha
MAX_SPACING = 3.0
RELAX = 0.9  # spacing factor per good answer


class Pacer:
    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._until = 0.0  # end of the cool-down
        self._next = 0.0  # the next free action slot
        self.spacing = 0.0

    @property
    def holding(self) -> bool:
        return self._until > self._monotonic()

    def captcha(self, cooldown: float) -> None:
        """A captcha was answered: quiet for ``cooldown`` s, then space actions wider."""
        self._until = max(self._until, self._monotonic() + cooldown)
        self.spacing = min(MAX_SPACING, max(MIN_SPACING, self.spacing * 2))

    def relax(self) -> None:
        """A good answer: space actions a little closer."""
        self.spacing *= RELAX
        if self.spacing < MIN_SPACING / 4:
            self.spacing = 0.0

    async def wait(self) -> None:
        """Until the cool-down is over (no slot taken)."""
        while (left := self._until - self._monotonic()) > 0:
            await self._sleep(left)

    async def turn(self) -> None:
        """Until this caller may act: after the cool-down, one spacing after the last."""
        await self.wait()
        now = self._monotonic()
        slot = max(now, self._next)
        self._next = slot + self.spacing
        if slot > now:
            await self._sleep(slot - now)
        await self.wait()  # a captcha may have come meanwhile
