"""Redis holds only what can be lost: rate-limit counters, replay guards, caches."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisKeys:
    """Redis client plus the key prefix this deployment (or test run) owns."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)


# A Redis that stops answering (rather than refusing) must not hold requests: its users either do
# without it (the POS replay guard) or refuse with a 503 (rate limits), as when it is down.
TIMEOUT_S = 2.0


def connect_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=False,
        health_check_interval=30,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
    )
