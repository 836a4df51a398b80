"""The gateway's cache of serialised response bodies: in-process first, then Redis.

The in-process layer answers hot keys without a Redis round-trip and, with no
`REDIS_URL`, is the whole cache. Entries read from Redis are kept locally for exactly
their remaining Redis TTL, so the two layers expire together. Redis failures never fail
a request: `RedisCache` swallows them and stays out of the way for a while.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from market_data_gateway.redis_cache import RedisCache
from shared.health import CheckResult

CacheResult = Literal["hit", "miss", "error"]


class LocalCache:
    """A TTL map of bytes bounded in entries (expired first, then oldest, are dropped)."""

    def __init__(self, *, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, bytes]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def set(self, key: str, body: bytes, ttl: float) -> None:
        if ttl <= 0:
            return
        if key not in self._entries and len(self._entries) >= self.max_entries:
            self._evict()
        self._entries[key] = (self._clock() + ttl, body)

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        if len(self._entries) >= self.max_entries:
            # Drop the oldest tenth at once, so a full cache is not rescanned on every set.
            for key in list(self._entries)[: max(1, self.max_entries // 10)]:
                del self._entries[key]


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
