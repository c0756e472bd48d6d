"""RedisMinuteWindow: each (project, model)'s per-minute request window, shared by every
enrich worker through Redis when ``REDIS_URL`` is set (the client's ``MinuteWindow``).

One sorted set per pair, ``gemini:minute:<project>|<model>``, scored by send time
(POSIX seconds, the workers' clocks). A Lua script drops the entries older than the
window, counts, and either adds this request or answers when the oldest entry that
must leave will have left: one atomic step on the server, so two workers cannot both
take the last slot. The window is the server's 60 s plus the client's margin (see
``pipelines.gemini.limiter``). A request the service then refused keeps its slot until
it leaves the window: a little conservative, never over the limit.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
from typing import Any

from pipelines.gemini.limiter import WINDOW_MARGIN_SECONDS, WINDOW_SECONDS

SPAN = WINDOW_SECONDS + WINDOW_MARGIN_SECONDS
_ADMIT = """
local key, now, span, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(span * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + span)
"""


class RedisMinuteWindow:
    def __init__(self, redis: Any, *, prefix: str = "gemini:minute:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_ADMIT)
        self._ids = itertools.count()
        # Members must be unique across every window on the server (a repeated member
        # would only move the entry): host, pid, this window, a counter.
        self._me = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    @classmethod
    def from_url(cls, url: str) -> RedisMinuteWindow:
        from redis.asyncio import Redis

        return cls(Redis.from_url(url))

    async def admit(self, project: str, model: str, now: float, rpm: int) -> float:
        """Book one request sent at ``now`` if the pair's window has room: 0.0; else the
        time at which it will have room (nothing booked)."""
        member = f"{self._me}:{next(self._ids)}:{now:.6f}"
        answer = await self._script(
            keys=[f"{self.prefix}{project}|{model}"], args=[f"{now:.6f}", SPAN, rpm, member]
        )
        return float(answer.decode() if isinstance(answer, bytes) else answer)

    async def close(self) -> None:
        await self.redis.aclose()
