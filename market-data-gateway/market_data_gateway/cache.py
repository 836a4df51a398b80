"""The gateway's cache of serialised response bodies: in-process first, then Redis.

The in-process layer answers hot keys without a Redis round-trip and, with no
`REDIS_URL`, is the whole cache. Entries read from Redis are kept locally for exactly
their remaining Redis TTL, so the two layers expire together. Redis failures never fail
a request: `RedisCache` swallows them and stays out of the way for a while.
"""

from __future__ import annotations

from typing import Literal

from market_data_gateway.redis_cache import RedisCache
from shared.health import CheckResult
from shared.ttl_cache import TTLCache

CacheResult = Literal["hit", "miss", "error"]


# The in-process layer: prices and candles by key, as rendered bytes.
LocalCache = TTLCache[str, bytes]


class MarketCache:
    """The two layers behind one interface; `redis` is None without `REDIS_URL`."""

    def __init__(self, local: LocalCache, redis: RedisCache | None = None) -> None:
        self.local = local
        self.redis = redis

    @property
    def backend(self) -> str:
        return "memory" if self.redis is None else "redis"

    def peek(self, key: str) -> bytes | None:
        """The in-process layer only: no await, the hot path of a cache hit."""
        return self.local.get(key)

    async def get(self, key: str) -> bytes | None:
        return (await self.lookup(key))[0]

    async def lookup(self, key: str) -> tuple[bytes | None, CacheResult]:
        """The body, and whether it was a hit, a miss, or Redis failed to say."""
        body = self.local.get(key)
        if body is not None:
            return body, "hit"
        if self.redis is None:
            return None, "miss"
        found = await self.redis.get(key)
        if found is None:
            return None, "error" if self.redis.down else "miss"
        body, ttl = found
        self.local.set(key, body, ttl)
        return body, "hit"

    async def set(self, key: str, body: bytes, ttl: float) -> None:
        self.local.set(key, body, ttl)
        if self.redis is not None:
            await self.redis.set(key, body, ttl)

    async def check(self) -> CheckResult:
        """`/health`: Redis reachable (healthy) or not (degraded: serving uncached)."""
        if self.redis is None:
            return CheckResult(
                "healthy",
                {"backend": "memory", "redis": "not configured", "entries": len(self.local)},
            )
        return await self.redis.check()

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
