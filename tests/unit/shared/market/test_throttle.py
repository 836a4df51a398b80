"""The token bucket and Retry-After parsing that keep us under Coinbase's limits."""

from __future__ import annotations

import asyncio

import pytest

from shared.market.throttle import TokenBucket


class Time:
    """A monotonic clock moved only by the injected sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.log.append(seconds)
        self.now += seconds


async def test_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    """The first `capacity` calls go at once, the rest wait 1/rate each, in order."""
    t = Time()
    bucket = TokenBucket(8, 8, clock=t, sleep=t.sleep)
    for _ in range(8):
        await bucket.acquire()
    assert t.log == []
    await bucket.acquire()
    await bucket.acquire()
    assert t.log == pytest.approx([0.125, 0.125])


async def test_concurrent_callers_never_exceed_the_rate() -> None:
    """50 concurrent callers are spread so that no second sees more than the rate + burst."""
    bucket = TokenBucket(8, 8, clock=lambda: 0.0, sleep=lambda s: asyncio.sleep(0))
    waits = [bucket.reserve() for _ in range(50)]
    send_times = sorted(w for w in waits if w is not None)
    for start in range(int(send_times[-1]) + 1):
        in_window = [s for s in send_times if start <= s < start + 1]
        assert len(in_window) <= 8 + 8
    assert send_times[-1] == pytest.approx((50 - 8) / 8)


async def test_bucket_refills_with_time() -> None:
    """After a quiet second the bucket is full again."""
    t = Time()
    bucket = TokenBucket(4, 4, clock=t, sleep=t.sleep)
    for _ in range(4):
        await bucket.acquire()
    t.now += 1.0
    for _ in range(4):
        await bucket.acquire()
    assert t.log == []


async def test_bucket_refuses_beyond_max_wait_without_taking_a_token() -> None:
    """A caller that cannot wait long enough is refused and leaves the bucket as it was."""
    t = Time()
    bucket = TokenBucket(2, 1, clock=t, sleep=t.sleep)
    assert await bucket.acquire(max_wait=0.1)
    assert not await bucket.acquire(max_wait=0.1)
    assert await bucket.acquire(max_wait=0.5)
    assert t.log == [0.5]


def test_bucket_rejects_nonsense() -> None:
    """A zero rate or an empty bucket is a configuration error."""
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0, 1)
