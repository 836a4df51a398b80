"""The circuit breaker's state machine, driven by an injected clock."""

from __future__ import annotations

import pytest

from shared.breaker import BreakerState, CircuitBreaker
from tests.unit.shared.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("target", failure_threshold=3, recovery_timeout=10.0, clock=clock)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        assert breaker.allow()
        breaker.record_failure()


async def test_starts_closed_and_allows(breaker: CircuitBreaker) -> None:
    """A new breaker is CLOSED and lets every call through."""
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(10))


async def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    """It stays CLOSED below the threshold and opens on the threshold-th consecutive failure."""
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.snapshot().state is BreakerState.OPEN


async def test_success_resets_consecutive_count(breaker: CircuitBreaker) -> None:
    """A success between failures resets the count, so non-consecutive failures never open it."""
    for _ in range(5):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 0


async def test_open_refuses_until_recovery_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """OPEN refuses calls until recovery_timeout has passed, and says how long to wait."""
    trip(breaker)
    clock.advance(4.0)
    assert not breaker.allow()
    assert breaker.retry_after() == pytest.approx(6.0)
    clock.advance(5.999)
    assert not breaker.allow()
    assert breaker.state is BreakerState.OPEN


async def test_exactly_one_probe_after_recovery(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """After recovery_timeout it reads HALF_OPEN and lets exactly one probe through."""
    trip(breaker)
    clock.advance(10.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.retry_after() == 0.0
    verdicts = [breaker.allow() for _ in range(20)]
    assert verdicts.count(True) == 1
    assert verdicts[0] is True
    assert breaker.state is BreakerState.HALF_OPEN


async def test_probe_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """A successful probe closes the breaker and calls flow again."""
    trip(breaker)
    clock.advance(10.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(5))


async def test_probe_failure_reopens_with_fresh_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """A failed probe re-opens the breaker for a full new recovery_timeout."""
    trip(breaker)
    clock.advance(15.0)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == pytest.approx(10.0)
    clock.advance(9.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()
    assert not breaker.allow()


async def test_release_probe_lets_another_caller_probe(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """A probe released without a verdict (cancelled) frees the slot for exactly one other."""
    trip(breaker)
    clock.advance(10.0)
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release_probe()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()


async def test_snapshot_counts(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """The snapshot reports state, consecutive and total failures, successes, rejections."""
    breaker.record_success()
    trip(breaker)
    assert not breaker.allow()
    assert not breaker.allow()
    clock.advance(2.5)
    snap = breaker.snapshot()
    assert snap.state is BreakerState.OPEN
    assert snap.consecutive_failures == 3
    assert snap.total_failures == 3
    assert snap.total_successes == 1
    assert snap.rejected == 2
    assert snap.retry_after == pytest.approx(7.5)


async def test_rejects_invalid_configuration() -> None:
    """A threshold below 1 or a non-positive recovery timeout is refused at construction."""
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("t", failure_threshold=0, recovery_timeout=1.0)
    with pytest.raises(ValueError, match="recovery_timeout"):
        CircuitBreaker("t", failure_threshold=1, recovery_timeout=0.0)


async def test_late_failures_do_not_extend_open_window(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """Failures of calls let through before opening neither restart nor extend the timeout."""
    trip(breaker)
    clock.advance(6.0)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.retry_after() == pytest.approx(4.0)
    assert breaker.snapshot().total_failures == 5
    clock.advance(4.0)
    assert breaker.allow()


async def test_a_closed_breaker_has_no_wait_and_keeps_its_name(breaker: CircuitBreaker) -> None:
    """CLOSED: retry_after is 0 (a caller need not wait); the name is the target's."""
    assert breaker.retry_after() == 0.0
    assert breaker.snapshot().retry_after == 0.0
    assert breaker.name == "target"


async def test_every_success_is_counted(breaker: CircuitBreaker) -> None:
    """total_successes counts each success, not just whether there was one."""
    for _ in range(3):
        breaker.record_success()
    assert breaker.snapshot().total_successes == 3


async def test_snapshot_rounds_the_wait_to_milliseconds(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """/health shows retry_after to the millisecond."""
    trip(breaker)
    clock.advance(2.12345)
    assert breaker.snapshot().retry_after == 7.877


async def test_the_configuration_error_names_both_rules() -> None:
    """The refusal says what is required of both settings."""
    with pytest.raises(
        ValueError, match=r"^failure_threshold must be >= 1 and recovery_timeout > 0$"
    ):
        CircuitBreaker("t", failure_threshold=0, recovery_timeout=1.0)
