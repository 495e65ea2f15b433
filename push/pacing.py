"""One send rate for every worker of a deployment, and one pause when FCM says to slow down.

Both live in Redis and use Redis's clock, so workers on hosts whose clocks differ still share one
window. Each second's window counts the messages workers are about to send; a worker whose share does
not fit waits for the next second. A 429 from FCM pauses every worker until its Retry-After (or the
backoff) has passed.

If Redis is unreachable, nothing is sent: the error stops the worker's batch, which hands its claims
back, rather than sending at an unknown rate.
"""

from __future__ import annotations

import asyncio
import math

from infra.redis import RedisKeys

# KEYS[1]: window key prefix. ARGV: messages, rate per second. Returns microseconds to wait (0: go).
_TAKE = """
local now = redis.call('TIME')
local key = KEYS[1] .. now[1]
local used = redis.call('INCRBY', key, ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('EXPIRE', key, 2) end
if used <= tonumber(ARGV[2]) then return 0 end
return 1000000 - tonumber(now[2])
"""
# KEYS[1]: pause key. ARGV[1]: milliseconds. A longer pause already set is kept.
_PAUSE = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 0
"""


class Pacer:
    def __init__(self, redis: RedisKeys, rate_per_second: int) -> None:
        self.rate = rate_per_second
        self._client = redis.client
        self._window = redis.key("push", "rate", "")
        self._pause = redis.key("push", "paused")

    async def take(self, messages: int) -> None:
        """Wait until `messages` (at most the rate) may be sent within the project's rate."""
        if not 0 < messages <= self.rate:
            raise ValueError(f"take between 1 and {self.rate} messages at once")
        while True:
            wait_us = int(await self._client.eval(_TAKE, 1, self._window, messages, self.rate))
            if wait_us == 0:
                return
            await asyncio.sleep(wait_us / 1_000_000)

    async def pause(self, seconds: float) -> None:
        await self._client.eval(_PAUSE, 1, self._pause, max(1, math.ceil(seconds * 1000)))

    async def paused_for(self) -> float:
        """Seconds left of a pause FCM asked for (0: none)."""
        left = int(await self._client.pttl(self._pause))
        return max(0, left) / 1000
