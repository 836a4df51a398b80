"""Retry rules of `ServiceClient`: which failures, how often, how long to wait (tenacity)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from shared.errors import ServiceUnavailableError


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry; the caller's timeout bounds the total."""

    max_attempts: int = 3
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    jitter: float = 0.05

    def backoff(self, state: RetryCallState) -> float:
        """Seconds to wait before the next attempt: exponential, plus jitter, capped."""
        exponential = self.initial_backoff * 2.0 ** (state.attempt_number - 1)
        return min(exponential + random.uniform(0, self.jitter), self.max_backoff)

    def retrying(
        self,
        deadline: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> AsyncRetrying:
        """Tenacity's loop for one call: retryable `AttemptError`s only, bounded twice."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | _StopAtDeadline(deadline, clock),
            wait=self.backoff,
            retry=retry_if_exception(lambda e: isinstance(e, AttemptError) and e.retryable),
            sleep=sleep,
            reraise=True,
        )


class AttemptError(ServiceUnavailableError):
    """One attempt failed; `retryable` says whether another attempt is safe."""

    def __init__(self, service: str, detail: str, *, retryable: bool, **kw: Any) -> None:
        super().__init__(service, detail, **kw)
        self.retryable = retryable


def transport_failure(
    service: str, error: BaseException, sent: bool, timed_out: bool, idempotent: bool
) -> AttemptError:
    """An attempt that got no answer: retryable if idempotent, or if nothing was sent."""
    kind = "unreachable" if not sent else "timed out" if timed_out else "failed"
    detail = f"{service} {kind}: {type(error).__name__}"
    return AttemptError(service, detail, retryable=idempotent or not sent)


class _StopAtDeadline(stop_base):
    """Stop when the next backoff would end past the call's deadline."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self.deadline = deadline
        self.clock = clock

    def __call__(self, state: RetryCallState) -> bool:
        return self.clock() + (state.upcoming_sleep or 0.0) >= self.deadline
