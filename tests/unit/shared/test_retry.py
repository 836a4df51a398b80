"""The retry rules: which failures retry, the backoff, and the two bounds (attempts, deadline)."""

from __future__ import annotations

import random

import httpx
import pytest
from tenacity import AsyncRetrying, RetryCallState

from shared.retry import AttemptError, RetryPolicy, transport_failure
from tests.unit.shared.fakes import FakeClock, FakeSleep


async def attempts(policy: RetryPolicy, failure: Exception, *, deadline: float = 1e9) -> int:
    """How many attempts one call makes when every attempt fails with `failure`."""
    clock = FakeClock(0.0)
    made = 0

    async def call() -> None:
        nonlocal made
        async for attempt in policy.retrying(deadline, clock, FakeSleep(clock)):
            with attempt:
                made += 1
                raise failure

    with pytest.raises(type(failure)):
        await call()
    return made


def retryable(yes: bool) -> AttemptError:
    return AttemptError("risk", "risk timed out: ReadTimeout", retryable=yes)


async def test_a_retryable_failure_is_tried_max_attempts_times() -> None:
    """A retryable attempt error is tried again, up to max_attempts in all."""
    assert await attempts(RetryPolicy(max_attempts=4), retryable(True)) == 4


async def test_a_failure_not_safe_to_repeat_is_tried_once() -> None:
    """A non-retryable attempt error, or any other exception, is not tried again."""
    assert await attempts(RetryPolicy(max_attempts=4), retryable(False)) == 1
    assert await attempts(RetryPolicy(max_attempts=4), ValueError("bug")) == 1


async def test_no_attempt_starts_whose_backoff_would_end_at_or_past_the_deadline() -> None:
    """Deadline 0.1 s and a 0.1 s backoff: the wait would end at the deadline, so no retry."""
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.1, max_backoff=1.0, jitter=0.0)
    assert await attempts(policy, retryable(True), deadline=0.1) == 1
    assert await attempts(policy, retryable(True), deadline=0.1001) == 2


async def test_without_backoff_only_the_attempts_bound() -> None:
    """With no wait between attempts, a far deadline leaves max_attempts as the bound."""
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.0, max_backoff=0.0, jitter=0.0)
    assert await attempts(policy, retryable(True), deadline=0.5) == 3


def test_backoff_doubles_adds_jitter_on_top_and_is_capped() -> None:
    """Attempt n waits initial x 2^(n-1) plus 0..jitter, never above max_backoff."""
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5, jitter=0.05)
    random.seed(7)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4)]:
        waits = [policy.backoff(state_at(attempt)) for _ in range(50)]
        assert all(base <= w <= min(base + 0.05, 0.5) for w in waits), (attempt, waits)
        assert max(waits) > base  # the jitter is added, not subtracted
    assert policy.backoff(state_at(6)) == 0.5


def state_at(attempt: int) -> RetryCallState:
    """Tenacity's state of a call about to wait after `attempt` failed attempts."""
    state = RetryCallState(AsyncRetrying(), None, (), {})
    state.attempt_number = attempt
    return state


@pytest.mark.parametrize(
    ("sent", "timed_out", "idempotent", "detail", "again"),
    [
        (False, False, False, "risk unreachable: ConnectError", True),  # never left
        (True, True, False, "risk timed out: ConnectError", False),  # may have acted
        (True, True, True, "risk timed out: ConnectError", True),  # safe to repeat
        (True, False, False, "risk failed: ConnectError", False),
        (True, False, True, "risk failed: ConnectError", True),
    ],
)
def test_a_failure_without_an_answer_says_what_happened_and_if_it_may_repeat(
    sent: bool, timed_out: bool, idempotent: bool, detail: str, again: bool
) -> None:
    """Unreachable, timed out or failed, named with the service; retryable if safe."""
    error = transport_failure("risk", httpx.ConnectError("x"), sent, timed_out, idempotent)
    assert (error.service, error.detail, error.retryable) == ("risk", detail, again)
    assert error.status == 503
