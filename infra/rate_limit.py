"""Fixed-window counters in Redis; what happens when Redis is down is the caller's stated choice."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from domain.errors import DomainError
from infra.redis import RedisKeys

log = logging.getLogger(__name__)


class RateLimiterUnavailable(DomainError):
    code = "rate_limiter_unavailable"
    status = 503
    title = "Temporarily unable to check request limits; retry shortly"


async def within_limit(redis: RedisKeys, key: str, limit: int, window_s: int, *, fail_open: bool) -> bool:
    """Count one attempt under `key`; False once more than `limit` happened in the window."""
    full_key = redis.key("rate", key)
    try:
        # SET NX EX starts the window; INCR then counts in it (EXPIRE NX would need Redis 7).
        async with redis.client.pipeline(transaction=True) as pipe:
            pipe.set(full_key, 0, ex=window_s, nx=True)
            pipe.incr(full_key)
            _, count = await pipe.execute()
    except RedisError as error:
        if fail_open:
            log.warning("rate limit %s not checked: redis unavailable (%s)", key, error)
            return True
        raise RateLimiterUnavailable() from error
    return int(count) <= limit
