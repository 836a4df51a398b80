"""The one retry helper: what it retries (`on=`), its two bounds, the waits, Retry-After."""

from __future__ import annotations

import pytest

from shared.errors import ServiceUnavailableError
from shared.retry import RetryOn, RetryPolicy, retry
from tests.unit.shared.fakes import FakeClock, FakeSleep

POLICY = RetryPolicy(attempts=4, initial_backoff=0.1, max_backoff=0.5)


class Script:
    """An attempt that fails with the scripted errors, then answers; it records the
    seconds left it was given at each attempt."""

    def __init__(self, *errors: BaseException, clock: FakeClock) -> None:
        self.errors = list(errors)
        self.clock = clock
        self.given: list[float] = []

    async def __call__(self, seconds_left: float) -> str:
        self.given.append(seconds_left)
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


async def run(
    script: Script,
    *,
    on: RetryOn = ServiceUnavailableError,
    policy: RetryPolicy = POLICY,
    timeout: float = 60.0,
    jitter: float = 1.0,
) -> tuple[str, list[float]]:
    sleep = FakeSleep(script.clock)
    answer = await retry(
        script,
        on=on,
        policy=policy,
        timeout=timeout,
        clock=script.clock,
        sleep=sleep,
        jitter=lambda: jitter,
    )
    return answer, sleep.delays


def busy(retry_after: float | None = None) -> ServiceUnavailableError:
    return ServiceUnavailableError("risk", "risk answered 503", retry_after=retry_after)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


async def test_an_on_failure_is_retried_until_an_answer(clock: FakeClock) -> None:
    """Failures `on=` names are retried, with doubling waits, until the attempt answers."""
    script = Script(busy(), busy(), clock=clock)
    assert await run(script) == ("answer", [0.1, 0.2])


async def test_only_the_on_failures_are_retried(clock: FakeClock) -> None:
    """Any other exception ends the call at once, as it is."""
    error = ValueError("a bug")
    script = Script(error, clock=clock)
    with pytest.raises(ValueError, match="a bug") as info:
        await run(script)
    assert info.value is error
    assert len(script.given) == 1


async def test_a_later_failure_on_does_not_name_ends_the_retries(clock: FakeClock) -> None:
    """A retried attempt failing another way is raised at once: no third attempt."""
    error = ValueError("a bug")
    script = Script(busy(), error, clock=clock)
    with pytest.raises(ValueError, match="a bug") as info:
        await run(script)
    assert info.value is error
    assert len(script.given) == 2


async def test_on_may_be_a_tuple_or_a_predicate(clock: FakeClock) -> None:
    """`on=` takes exception types or a predicate deciding per failure."""
    script = Script(KeyError("k"), busy(), clock=clock)
    assert (await run(script, on=(KeyError, ServiceUnavailableError)))[0] == "answer"
    refused = Script(busy(retry_after=None), clock=clock)
    with pytest.raises(ServiceUnavailableError):
        await run(refused, on=lambda error: getattr(error, "retry_after", None) is not None)
    assert len(refused.given) == 1


async def test_attempts_are_bounded_and_the_last_failure_is_raised(clock: FakeClock) -> None:
    """A target that keeps failing gets `attempts` tries; the last error comes out as it is."""
    errors = [busy() for _ in range(10)]
    script = Script(*errors, clock=clock)
    with pytest.raises(ServiceUnavailableError) as info:
        await run(script)
    assert len(script.given) == 4
    assert info.value is errors[3]


async def test_no_wait_ends_at_or_past_the_deadline(clock: FakeClock) -> None:
    """Timeout 0.1 s and a 0.1 s backoff: the wait would end at the deadline, so no retry."""
    assert len(await attempts_within(0.1, clock)) == 1
    assert len(await attempts_within(0.1001, FakeClock(0.0))) == 2


async def attempts_within(timeout: float, clock: FakeClock) -> list[float]:
    script = Script(*(busy() for _ in range(10)), clock=clock)
    with pytest.raises(ServiceUnavailableError):
        await run(script, timeout=timeout)
    return script.given


async def test_each_attempt_is_given_the_time_left(clock: FakeClock) -> None:
    """The attempt gets the seconds left before the deadline, less after every wait."""
    script = Script(busy(), busy(), clock=clock)
    await run(script, timeout=2.0)
    assert script.given == pytest.approx([2.0, 1.9, 1.7])


async def test_retry_after_longer_than_the_backoff_is_waited(clock: FakeClock) -> None:
    """A failure carrying `retry_after` waits that long when it is longer than the backoff,
    the backoff when it is shorter."""
    script = Script(busy(retry_after=3.0), busy(retry_after=0.01), clock=clock)
    assert await run(script) == ("answer", [3.0, 0.2])


async def test_retry_after_past_the_deadline_gives_up_at_once(clock: FakeClock) -> None:
    """A Retry-After beyond the time budget is not waited: the failure (with its hint) is
    raised after one attempt."""
    script = Script(busy(retry_after=120.0), clock=clock)
    with pytest.raises(ServiceUnavailableError) as info:
        await run(script, timeout=4.5)
    assert info.value.retry_after == 120.0
    assert len(script.given) == 1
    assert clock() == 0.0


async def test_jitter_spreads_each_wait_between_half_and_all_of_the_backoff(
    clock: FakeClock,
) -> None:
    """The injected jitter in [0, 1] takes half the backoff plus that share of the rest."""
    script = Script(busy(), busy(), busy(), clock=clock)
    assert (await run(script, jitter=0.0))[1] == pytest.approx([0.05, 0.1, 0.2])
    script = Script(busy(), clock=FakeClock(0.0))
    assert (await run(script, jitter=0.5))[1] == pytest.approx([0.075])


def test_backoff_doubles_and_is_capped() -> None:
    """Attempt n waits at most initial x 2^(n-1), never more than max_backoff."""
    assert [POLICY.backoff(n, 1.0) for n in (1, 2, 3, 4, 9)] == [0.1, 0.2, 0.4, 0.5, 0.5]


async def test_without_backoff_the_retries_go_on_until_the_deadline(clock: FakeClock) -> None:
    """`RETRY_INITIAL_BACKOFF_SECONDS=0` is allowed: no wait at all, so the retries go on
    while any time is left, however little (here half a second)."""
    script = Script(busy(), busy(), clock=clock)
    no_wait = RetryPolicy(attempts=4, initial_backoff=0.0, max_backoff=0.0)
    assert await run(script, policy=no_wait, timeout=0.5) == ("answer", [0.0, 0.0])
