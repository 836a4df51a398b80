"""A circuit breaker per target service: fail fast while the target is down.

CLOSED --(failure_threshold consecutive failures)--> OPEN
OPEN --(recovery_timeout elapsed, next call)--> HALF_OPEN: exactly one probe goes through
HALF_OPEN --probe succeeds--> CLOSED;  --probe fails--> OPEN again
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass


class BreakerState(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True)
class BreakerSnapshot:
    """What `/health` shows of a breaker."""

    state: BreakerState
    consecutive_failures: int
    total_failures: int
    total_successes: int
    rejected: int
    retry_after: float


class CircuitBreaker:
    """Counts consecutive failures of one target and refuses calls while it is OPEN.

    The breaker never awaits, so `allow()` and the `record_*` calls are atomic on the
    event loop: concurrent callers in HALF_OPEN cannot both become the probe.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        recovery_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or recovery_timeout <= 0:
            raise ValueError("failure_threshold must be >= 1 and recovery_timeout > 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._total_failures = 0
        self._total_successes = 0
        self._rejected = 0

    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker past its timeout reads as HALF_OPEN."""
        if self._state is BreakerState.OPEN and self._recovery_due():
            return BreakerState.HALF_OPEN
        return self._state

    def retry_after(self) -> float:
        """Seconds until an OPEN breaker lets a probe through (0 when it would now)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.recovery_timeout - self._clock())

    def allow(self) -> bool:
        """Whether a call may go out now; in HALF_OPEN only the single probe may."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN and self._recovery_due():
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
        if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        self._rejected += 1
        return False

    def record_success(self) -> None:
        """The target answered: close the breaker and forget past failures."""
        self._total_successes += 1
        self._consecutive_failures = 0
        self._probe_in_flight = False
        self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        """The target failed: open after the threshold, or at once if this was the probe."""
        self._total_failures += 1
        self._consecutive_failures += 1
        if self._state is BreakerState.OPEN:
            # A call let through before the breaker opened failed late: the recovery
            # window already runs and must not be pushed back by stragglers.
            return
        self._probe_in_flight = False
        if (
            self._state is BreakerState.HALF_OPEN
            or self._consecutive_failures >= self.failure_threshold
        ):
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()

    def release_probe(self) -> None:
        """A call ended with no verdict (cancelled): let another caller be the probe."""
        self._probe_in_flight = False

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(
            state=self.state,
            consecutive_failures=self._consecutive_failures,
            total_failures=self._total_failures,
            total_successes=self._total_successes,
            rejected=self._rejected,
            retry_after=round(self.retry_after(), 3),
        )

    def _recovery_due(self) -> bool:
        return self._clock() - self._opened_at >= self.recovery_timeout
