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


def connect_redis(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=False, health_check_interval=30)
