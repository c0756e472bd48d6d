"""The quota books this process shares with other workers: the Pacific-day request
count (a :class:`QuotaLedger`, MongoDB) and the per-minute window (a
:class:`MinuteWindow`, Redis). Either may be absent (this process's own limiter is
then the only book).

A request is booked in the shared day count, then in the shared minute window, before
it is sent (:meth:`SharedBooks.admit`); when one refuses, nothing stays booked anywhere
and the pair waits or is out for the day. A store that is down never stops a request:
the process's own counts still hold, and a warning says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable

from .call import Pick
from .limiter import ModelLimits, next_pacific_midnight, pacific_day
from .state import MinuteWindow, QuotaLedger, QuotaState

logger = logging.getLogger(__name__)


class SharedBooks:
    def __init__(
        self,
        ledger: QuotaLedger | None,
        window: MinuteWindow | None,
        state: QuotaState,
        stats: Counter[str],
        safe: Callable[[BaseException], str],
    ) -> None:
        self.ledger = ledger  # the day counts shared with other workers (None: this process)
        self.window = window  # the per-minute windows shared through Redis (None: local)
        self._state = state
        self._stats = stats
        self._safe = safe  # an exception as text without secrets

    async def admit(self, pick: Pick, sent_at: float, tokens: int) -> bool:
        """The shared books (day ledger, then minute window) admit this request; when one
        does not, nothing is booked anywhere and the pair waits (route again)."""
        if self.ledger is not None and not await self._reserve_day(pick, sent_at, tokens):
            return False
        rpm = pick.limiter.limits.rpm
        if self.window is None or rpm is None:
            return True
        try:
            free_at = await self.window.admit(pick.project, pick.model, sent_at, rpm)
        except Exception as exc:  # Redis is down: this process's own window still holds
            logger.warning("shared Gemini minute window unavailable: %s", self._safe(exc))
            return True
        if free_at <= 0:
            return True
        pick.limiter.refund(sent_at, tokens)
        if self.ledger is not None:
            with contextlib.suppress(Exception):  # the store is down: the day count errs high
                await self.ledger.refund(pick.project, pick.model, sent_at)
        pick.limiter.block(free_at)
        self._stats["waits_shared/per_minute"] += 1
        return False

    async def refund(self, pick: Pick, sent_at: float) -> None:
        """A request refused at the door (a 429) spent no quota: take it out of the day count."""
        if self.ledger is not None:
            await self.ledger.refund(pick.project, pick.model, sent_at)

    async def block_day(self, pick: Pick, now: float, until: float, limit: int | None) -> None:
        """A per-day 429: the pair is out for every worker until ``until`` (best effort:
        the 429 speaks for itself)."""
        if self.ledger is not None:
            with contextlib.suppress(Exception):
                await self.ledger.block(pick.project, pick.model, now, until, limit)

    async def _reserve_day(self, pick: Pick, sent_at: float, tokens: int) -> bool:
        """Book the request in the shared day count too; False (and the pair out for the
        day) when other workers have used the day's requests up or hit the per-day 429."""
        assert self.ledger is not None
        try:
            grant = await self.ledger.reserve(
                pick.project, pick.model, sent_at, pick.limiter.limits.rpd
            )
        except Exception as exc:  # the store is down: this process's own count still holds
            logger.warning("shared Gemini quota unavailable: %s", self._safe(exc))
            return True
        if grant.limit is not None:
            self._state.learn(pick.project, pick.model, ModelLimits(rpd=grant.limit))
        day = pacific_day(sent_at)
        if grant.granted:
            pick.limiter.restore_day(day, max(pick.limiter.day_count, grant.count))
            return True
        pick.limiter.refund(sent_at, tokens)
        until = max(grant.blocked_until or 0.0, next_pacific_midnight(sent_at))
        self._state.mark_exhausted(pick.project, pick.model, until, "per_day_shared")
        self._stats["deferred_shared/per_day"] += 1
        return False
