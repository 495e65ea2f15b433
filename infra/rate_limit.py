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


async def wait_before_next(redis: RedisKeys, key: str, limit: int, window_s: int, *, fail_open: bool) -> int:
    """Count one attempt under `key`: 0 while at most `limit` happened in the window, else the seconds
    until the window ends. With Redis down: 0 when `fail_open`, else RateLimiterUnavailable."""
    full_key = redis.key("rate", key)
    try:
        # SET NX EX starts the window; INCR then counts in it (EXPIRE NX would need Redis 7).
        async with redis.client.pipeline(transaction=True) as pipe:
            pipe.set(full_key, 0, ex=window_s, nx=True)
            pipe.incr(full_key)
            pipe.ttl(full_key)
            _, count, ttl_s = await pipe.execute()
    except RedisError as error:
        if fail_open:
            log.warning("rate limit %s not checked: redis unavailable (%s)", key, error)
            return 0
        raise RateLimiterUnavailable(retry_after_s=2) from error
    return 0 if int(count) <= limit else max(1, int(ttl_s))
