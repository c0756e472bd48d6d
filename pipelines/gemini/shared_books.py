"""The quota books this process shares with other workers: the Pacific-day request
count (a :class:`QuotaLedger`, MongoDB) and the per-minute window (a
:class:`MinuteWindow`, Redis). Either may be absent (this process's own limiter is
then the only book).

A request is booked in the shared day count, then in the shared minute window, before
it is sent (:meth:`SharedBooks.admit`); when one refuses, nothing stays booked anywhere
and the pair waits or is out for the day. A store that is down never stops a request:
the process's own counts still hold, and a warning says so.

The day count is reserved in blocks, not one round trip per request. A block of ``n``
is one atomic ``$inc n`` that the ledger grants only whole and only while
``count + n <= limit``, so the guarantee is unchanged: the requests counted across
workers never pass the day's limit, and none is sent before it is counted. The block
size (:func:`block_size`) is ``BLOCK_MAX`` far from the limit and shrinks with what the
day has left, ``remaining // BLOCK_HEADROOM``, down to one at a time in the last
``2 × BLOCK_HEADROOM`` requests (a 20-RPD project is always served one by one): the
requests other workers hold unused are then at most a sixteenth of what is left each,
and a block refused near the limit is asked again as a single request. What a block
costs: the shared count runs ahead of the requests sent by the unused part of the
blocks in hand; they are given back at :meth:`SharedBooks.close` (a killed worker's stay
counted, at most ``BLOCK_MAX - 1`` per pair, as do the unused ones of a day that ended
in a run: the day's count errs high, never low), and
a request refused at the door (429) or by the minute window goes back into the block
without a round trip. Concurrent sends of one pair take the block in turn (one lock per
pair), so a burst of 16 answers costs one or two reservations, not 16.

While the limit is unknown the ledger cannot refuse on the count at all: a reservation
only books the request and reads another worker's per-day block. Blocks are reserved
then too. A per-day block set elsewhere is then noticed at this worker's own next
per-day 429 (which spends no quota) rather than before the send; that 429 drops the
block in hand (:meth:`SharedBooks.block_day`), so each worker pays about one free 429
for it. Limits learned from the ledger (``grant.limit``) switch to the known-limit rule
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from .call import Pick
from .limiter import ModelLimits, next_pacific_midnight, pacific_day
from .state import MinuteWindow, Pair, QuotaLedger, QuotaState

logger = logging.getLogger(__name__)

BLOCK_MAX = 16  # requests reserved in one round trip far from the day's limit
BLOCK_HEADROOM = 16  # a block takes at most this fraction (1/16) of what the day has left


def block_size(limit: int | None, count: int) -> int:
    """How many requests to reserve at once with ``count`` of the day's ``limit`` used."""
    if limit is None:
        return BLOCK_MAX
    return max(1, min(BLOCK_MAX, (limit - count) // BLOCK_HEADROOM))


@dataclass
class _Block:
    """Requests of one pair's Pacific day reserved in the shared count and not yet sent."""

    day: date
    at: float  # a time on that day (the ledger's document of the day)
    left: int = 0


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
        self._blocks: dict[Pair, _Block] = {}
        self._locks: defaultdict[Pair, asyncio.Lock] = defaultdict(asyncio.Lock)

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
        await self.refund(pick, sent_at)
        pick.limiter.block(free_at)
        self._stats["waits_shared/per_minute"] += 1
        return False

    async def refund(self, pick: Pick, sent_at: float) -> None:
        """A request not sent or refused at the door (a 429) spent no quota: back into
        the block in hand (no round trip), else out of the shared day count."""
        if self.ledger is None:
            return
        block = self._blocks.get((pick.project, pick.model))
        if block is not None and block.day == pacific_day(sent_at):
            block.left += 1
            return
        with contextlib.suppress(Exception):  # the store is down: the day count errs high
            await self.ledger.refund(pick.project, pick.model, sent_at)

    async def block_day(self, pick: Pick, now: float, until: float, limit: int | None) -> None:
        """A per-day 429: the pair is out for every worker until ``until`` (best effort:
        the 429 speaks for itself); the block in hand is given back."""
        if self.ledger is not None:
            with contextlib.suppress(Exception):
                await self.ledger.block(pick.project, pick.model, now, until, limit)
            await self._give_back((pick.project, pick.model))

    async def close(self) -> None:
        """Give the unused reservations back to the shared day count (end of a run)."""
        for pair in list(self._blocks):
            await self._give_back(pair)

    async def _give_back(self, pair: Pair) -> None:
        block = self._blocks.pop(pair, None)
        if block is None or block.left <= 0 or self.ledger is None:
            return
        self._stats["shared_day/refunds"] += 1
        with contextlib.suppress(Exception):  # the store is down: the day count errs high
            await self.ledger.refund(pair[0], pair[1], block.at, block.left)

    async def _reserve_day(self, pick: Pick, sent_at: float, tokens: int) -> bool:
        """Book the request in the shared day count too (from the block in hand, or a new
        block); False (and the pair out for the day) when other workers have used the
        day's requests up or hit the per-day 429."""
        pair = (pick.project, pick.model)
        day = pacific_day(sent_at)
        async with self._locks[pair]:
            block = self._blocks.get(pair)
            if block is not None and block.day == day and block.left > 0:
                block.left -= 1
                return True
            return await self._reserve_block(pick, sent_at, tokens, day)

    async def _reserve_block(self, pick: Pick, sent_at: float, tokens: int, day: date) -> bool:
        assert self.ledger is not None
        limit = pick.limiter.limits.rpd
        n = block_size(limit, pick.limiter.day_count)
        try:
            grant = await self.ledger.reserve(pick.project, pick.model, sent_at, limit, n)
            self._stats["shared_day/reserves"] += 1
            if not grant.granted and n > 1 and (grant.blocked_until or 0.0) <= sent_at:
                n = 1  # near the limit: the last requests one at a time
                grant = await self.ledger.reserve(pick.project, pick.model, sent_at, limit, 1)
                self._stats["shared_day/reserves"] += 1
        except Exception as exc:  # the store is down: this process's own count still holds
            logger.warning("shared Gemini quota unavailable: %s", self._safe(exc))
            return True
        if grant.limit is not None:
            self._state.learn(pick.project, pick.model, ModelLimits(rpd=grant.limit))
        if grant.granted:
            self._blocks[(pick.project, pick.model)] = _Block(day, sent_at, n - 1)
            # The shared count up to this request (the rest of the block is not sent yet).
            pick.limiter.restore_day(day, max(pick.limiter.day_count, grant.count - (n - 1)))
            return True
        pick.limiter.refund(sent_at, tokens)
        until = max(grant.blocked_until or 0.0, next_pacific_midnight(sent_at))
        self._state.mark_exhausted(pick.project, pick.model, until, "per_day_shared")
        self._stats["deferred_shared/per_day"] += 1
        return False
