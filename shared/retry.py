"""The one retry helper: `retry(attempt, on=..., policy=..., timeout=...)` (tenacity underneath).

What to retry on is always named by the caller (`on=`, no default); attempts are bounded
by `policy.attempts` and by `timeout` (no attempt starts whose wait would end at or past
the deadline); the wait is exponential backoff with jitter, or the server's `Retry-After`
when the failure carries one (`retry_after`, as `ServiceUnavailableError` does) and it is
longer. A `Retry-After` beyond the deadline ends the retries at once: the caller passes
the hint on. Clock, sleep and jitter are injectable, so tests never wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

__all__ = ["RetryOn", "RetryPolicy", "retry"]

T = TypeVar("T")
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently (each caller's values come from its settings)."""

    attempts: int  # the first included
    initial_backoff: float  # seconds before the second attempt, doubled for each next one
    max_backoff: float

    def backoff(self, attempt: int, jitter: float) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based), `jitter` in [0, 1]:
        half the capped exponential, plus up to the other half, so replicas spread out."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + jitter / 2)


async def retry(
    attempt: Callable[[float], Awaitable[T]],
    *,
    on: RetryOn,
    policy: RetryPolicy,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """`await attempt(seconds_left)` until it returns, retrying only failures `on` names.

    `on` is an exception type, a tuple of them, or a predicate on the exception. The last
    failure is re-raised as it is when the attempts or the time run out.
    """
    deadline = clock() + timeout
    retryable = _predicate(on)
    # The first attempt runs outside tenacity: building its machinery on every call cost
    # more than the rest of `ServiceClient` on the trade path. Only a retryable failure
    # enters the loop below, which replays it so tenacity decides exactly as if it had run it.
    try:
        return await attempt(timeout)
    except Exception as exc:
        if not retryable(exc):
            raise
        first: BaseException | None = exc

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = getattr(error, "retry_after", None)
        backoff = policy.backoff(state.attempt_number, jitter())
        return backoff if asked is None else max(backoff, float(asked))

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | _StopAtDeadline(deadline, clock),
        wait=wait,
        retry=retry_if_exception(retryable),
        sleep=sleep,
        reraise=True,
    )
    async for state in retrying:
        with state:
            if first is not None:
                failed, first = first, None
                raise failed
            return await attempt(deadline - clock())
    raise AssertionError("unreachable: tenacity re-raises the last error")


def _predicate(on: RetryOn) -> Callable[[BaseException], bool]:
    if isinstance(on, type | tuple):
        kinds = on
        return lambda error: isinstance(error, kinds)
    return on


class _StopAtDeadline(stop_base):
    """Stop when the next wait would end at or past the deadline."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self.deadline = deadline
        self.clock = clock

    def __call__(self, state: RetryCallState) -> bool:
        return self.clock() + (state.upcoming_sleep or 0.0) >= self.deadline
