"""MAX_ORDERS_PER_MINUTE: a sliding one-minute window of trade attempts per caller.

Checked before anything is read or written, so a flood of refused attempts costs a dict
look-up each and never grows the ledger. Kept in the process (each replica counts its
own callers): a limit against runaway clients, not an exact quota across replicas.
Written here rather than taken from a library because it is a dozen lines on the hot
path and needs no storage.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from shared.errors import DomainError

WINDOW_SECONDS = 60.0


class TooManyOrdersError(DomainError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, limit: int, retry_after: float) -> None:
        super().__init__(
            f"More than {limit} trades in a minute from this caller (MAX_ORDERS_PER_MINUTE); "
            "nothing was done, try again after Retry-After seconds",
            extra={"limit": limit},
        )
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class OrderRateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def admit(self, caller: str) -> None:
        """Count one trade attempt of `caller`, or raise `TooManyOrdersError` (not counted)."""
        now = self._clock()
        seen = self._seen.get(caller)
        if seen is None:
            seen = self._seen[caller] = deque()
        while seen and seen[0] <= now - WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= self.per_minute:
            raise TooManyOrdersError(self.per_minute, seen[0] + WINDOW_SECONDS - now)
        seen.append(now)
        if len(self._seen) > 10_000:  # forget callers whose window has emptied
            for key in [k for k, v in self._seen.items() if not v or v[-1] <= now - 60]:
                del self._seen[key]
