"""Client-side politeness towards an exchange: a token bucket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """At most `rate` acquisitions per second on average, in bursts of up to `capacity`.

    A caller reserves its token before awaiting (no await between reading and updating
    the bucket, so concurrent callers on one event loop never race) and then sleeps off
    its own deficit: waiting callers queue in order without polling.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(capacity)
        self._updated = clock()

    def reserve(self, max_wait: float | None = None) -> float | None:
        """Take one token; return how long to wait before using it.

        None (and no token taken) when the wait would exceed `max_wait`: a caller with a
        deadline is refused at once instead of queueing behind a flood.
        """
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        wait = 0.0 if self._tokens >= 1 else (1.0 - self._tokens) / self.rate
        if max_wait is not None and wait > max_wait:
            return None
        self._tokens -= 1.0
        return wait

    async def acquire(self, max_wait: float | None = None) -> bool:
        """Wait until this caller may send one request; False if that is beyond `max_wait`."""
        wait = self.reserve(max_wait)
        if wait is None:
            return False
        if wait > 0:
            await self._sleep(wait)
        return True


__all__ = ["TokenBucket"]
