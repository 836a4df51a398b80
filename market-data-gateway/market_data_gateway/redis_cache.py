"""Redis as a best-effort shared cache: failures are swallowed, remembered and waited out.

Short socket timeouts bound what a dead or blackholed Redis costs one request; after a
failure Redis is left alone for `retry_seconds` (requests are served uncached meanwhile),
then tried again. `/health` always pings, so it reports a recovery as soon as it happens.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from shared.health import CheckResult

log = logging.getLogger(__name__)


class RedisCache:
    """GET/SET of bytes with TTLs in Redis; never raises for a Redis problem."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        socket_timeout: float,
        retry_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # One immediate retry: a pooled connection may be stale after a Redis restart.
        self._redis = Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._down_until: float | None = None
        self.last_error: str | None = None

    @property
    def down(self) -> bool:
        return self._down_until is not None

    async def get(self, key: str) -> tuple[bytes, float] | None:
        """The body and its remaining TTL in seconds, or None (miss, or Redis unusable)."""
        if self._resting():
            return None
        name = self.prefix + key
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(name)
                pipe.pttl(name)
                body, pttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            await self._failed(exc)
            return None
        self._recovered()
        if body is None or not isinstance(pttl, int) or pttl <= 0:
            return None
        return bytes(body), pttl / 1000

    async def set(self, key: str, body: bytes, ttl: float) -> None:
        if self._resting():
            return
        try:
            await self._redis.set(self.prefix + key, body, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            await self._failed(exc)
            return
        self._recovered()

    async def check(self) -> CheckResult:
        """Ping now (a successful ping ends the rest period early)."""
        try:
            await self._redis.ping()  # type: ignore[misc]  # redis-py types sync|async
        except (RedisError, OSError) as exc:
            await self._failed(exc)
            return CheckResult(
                "degraded", {"backend": "redis", "error": self.last_error, "serving": "uncached"}
            )
        self._recovered()
        return CheckResult("healthy", {"backend": "redis"})

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _resting(self) -> bool:
        return self._down_until is not None and self._clock() < self._down_until

    async def _failed(self, exc: BaseException) -> None:
        if self._down_until is None:
            log.warning("Redis unavailable (%s): serving uncached until it returns", exc)
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._down_until = self._clock() + self.retry_seconds
        # Drop every pooled connection: after a restart the next try starts fresh.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.connection_pool.disconnect()

    def _recovered(self) -> None:
        if self._down_until is not None:
            log.info("Redis is back: caching again")
            self._down_until = None
            self.last_error = None
