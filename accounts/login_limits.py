"""How often the doors to an account may be tried: logins per account and per client address, sign-ups per
client address. Counted in Redis before any work (no password hashed, nothing written past a limit); fails
closed when Redis is down (see DESIGN data rules).

The client address is the request's peer as the server sees it (`api.client_address`): behind a proxy
the server trusts, the address the proxy forwarded. `accounts.rules.limited_address` says what is counted.
"""

from __future__ import annotations

from accounts.errors import TooManyLoginAttempts, TooManyLoginAttemptsFromAddress, TooManySignUps
from accounts.rules import limited_address
from infra.rate_limit import wait_before_next
from infra.redis import RedisKeys


class LoginLimits:
    """Login attempts per account and per client address in one window; `from_address` binds the limits
    to one request's client (an unbound instance counts per account only: the service layer's callers
    outside HTTP)."""

    def __init__(
        self,
        redis: RedisKeys,
        attempts: int,
        window_s: int,
        attempts_per_address: int,
        address: str | None = None,
    ) -> None:
        self._redis = redis
        self._attempts = attempts
        self._window_s = window_s
        self._attempts_per_address = attempts_per_address
        self._address = address

    def from_address(self, host: str | None) -> LoginLimits:
        return LoginLimits(
            self._redis, self._attempts, self._window_s, self._attempts_per_address, limited_address(host)
        )

    async def count_attempt(self, surface: str, email: str) -> None:
        if self._address is not None:
            wait_s = await wait_before_next(
                self._redis,
                f"login-from:{self._address}",
                self._attempts_per_address,
                self._window_s,
                fail_open=False,
            )
            if wait_s:
                raise TooManyLoginAttemptsFromAddress(retry_after_s=wait_s)
        wait_s = await wait_before_next(
            self._redis, f"login:{surface}:{email}", self._attempts, self._window_s, fail_open=False
        )
        if wait_s:
            raise TooManyLoginAttempts(retry_after_s=wait_s)


class SignUpLimits:
    """Sign-ups per client address in one window, attempts counted (a refused email or password too);
    `from_address` binds the limit to one request's client (unbound, every sign-up shares one bucket)."""

    def __init__(self, redis: RedisKeys, sign_ups: int, window_s: int, address: str | None = None) -> None:
        self._redis = redis
        self._sign_ups = sign_ups
        self._window_s = window_s
        self._address = address

    def from_address(self, host: str | None) -> SignUpLimits:
        return SignUpLimits(self._redis, self._sign_ups, self._window_s, limited_address(host))

    async def count_attempt(self) -> None:
        wait_s = await wait_before_next(
            self._redis,
            f"sign-up-from:{self._address or limited_address(None)}",
            self._sign_ups,
            self._window_s,
            fail_open=False,
        )
        if wait_s:
            raise TooManySignUps(retry_after_s=wait_s)
