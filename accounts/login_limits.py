"""Login attempts per account per window; fails closed when Redis is down (see DESIGN data rules)."""

from __future__ import annotations

from accounts.errors import TooManyLoginAttempts
from infra.rate_limit import wait_before_next
from infra.redis import RedisKeys


class LoginLimits:
    def __init__(self, redis: RedisKeys, attempts: int, window_s: int) -> None:
        self._redis = redis
        self._attempts = attempts
        self._window_s = window_s

    async def count_attempt(self, surface: str, email: str) -> None:
        wait_s = await wait_before_next(
            self._redis, f"login:{surface}:{email}", self._attempts, self._window_s, fail_open=False
        )
        if wait_s:
            raise TooManyLoginAttempts(retry_after_s=wait_s)
