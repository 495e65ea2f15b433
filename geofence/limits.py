"""How often a member may try to check in, counted in Redis so refused attempts write nothing else.

Check-ins earn rewards, so the limiter fails closed: with Redis down a check-in answers 503
`rate_limiter_unavailable` (the app retries later) rather than letting attempts through unbounded.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from redis.exceptions import RedisError

from geofence.errors import TooManyCheckInAttempts
from infra.rate_limit import wait_before_next
from infra.redis import RedisKeys

log = logging.getLogger(__name__)

WINDOW_S = 3600
REFUSED_KEPT_S = 8 * 24 * 3600


class CheckInLimits:
    def __init__(self, redis: RedisKeys, attempts_per_hour: int) -> None:
        self._redis = redis
        self._attempts_per_hour = attempts_per_hour

    async def admit(self, member_id: uuid.UUID, now: datetime) -> None:
        """Count an attempt; past the hourly limit refuse it (429), counting the refusal for fraud review."""
        wait_s = await wait_before_next(
            self._redis, f"check-in:{member_id}", self._attempts_per_hour, WINDOW_S, fail_open=False
        )
        if wait_s:
            await self._count_refused(member_id, now)
            raise TooManyCheckInAttempts(retry_after_s=wait_s)

    async def refused_today(self, member_ids: list[uuid.UUID], now: datetime) -> dict[uuid.UUID, int]:
        """Attempts refused as too many, per member, on the UTC day of `now` (none if Redis is down)."""
        if not member_ids:
            return {}
        try:
            values = await self._redis.client.mget([self._refused_key(m, now) for m in member_ids])
        except RedisError as error:
            log.warning("refused check-in counts unavailable: %s", error)
            return {}
        return {m: int(v) for m, v in zip(member_ids, values, strict=True) if v is not None}

    async def _count_refused(self, member_id: uuid.UUID, now: datetime) -> None:
        key = self._refused_key(member_id, now)
        try:
            async with self._redis.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, REFUSED_KEPT_S)
                await pipe.execute()
        except RedisError as error:
            log.warning("refused check-in not counted: %s", error)

    def _refused_key(self, member_id: uuid.UUID, now: datetime) -> str:
        return self._redis.key("check-in-refused", f"{now:%Y%m%d}", str(member_id))
