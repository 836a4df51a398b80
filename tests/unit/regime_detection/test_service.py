"""RegimeService: one candle call per answer, answers kept until the next candle closes."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from regime_detection.config import Settings
from regime_detection.service import Assessment, RegimeService

from shared.market.client import MarketDataClient
from shared.market.models import CandleSeries
from shared.market.simulated import SimulatedMarket

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 60 + 10  # 10 s into a minute


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingMarket:
    """The simulator behind a `MarketDataClient`-shaped face that counts candle reads."""

    def __init__(self, clock: Clock, *, drop_last: bool = False) -> None:
        self.source = SimulatedMarket(7, clock=clock)
        self.calls: list[tuple[str, int, int]] = []
        self.drop_last = drop_last
        self.gate = asyncio.Event()
        self.gate.set()

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        self.calls.append((symbol, granularity, periods))
        await self.gate.wait()
        series = await self.source.candles(symbol, granularity, periods)
        if self.drop_last:  # the exchange has not published the newest candle yet
            return CandleSeries(symbol, granularity, "simulated", series.candles[:-1])
        return series


def _service(market: CountingMarket, clock: Clock, **settings: object) -> RegimeService:
    settings_ = Settings.model_validate(settings)
    return RegimeService(cast(MarketDataClient, market), settings_, clock=clock)


async def test_window_and_baseline_come_from_one_call() -> None:
    """periods=100 with a 300-candle baseline fetches 300 candles once."""
    clock = Clock(T0)
    market = CountingMarket(clock)
    answer = await _service(market, clock).assess("BTC-USD", 60, None)
    assert market.calls == [("BTC-USD", 60, 300)]
    assert answer.periods == 100
    assert answer.candles == 100
    assert answer.baseline_candles == 300
    assert answer.reading.regime in {"TRENDING", "CHOPPY", "VOLATILE"}
    assert answer.as_of == T0 - 10


async def test_an_answer_is_reused_until_the_next_candle_closes() -> None:
    """Same key within the candle: no new call; after the close: one new call."""
    clock = Clock(T0)
    market = CountingMarket(clock)
    service = _service(market, clock)
    first = await service.assess("BTC-USD", 60, 120)
    clock.now = T0 + 49  # still the same forming candle
    assert await service.assess("BTC-USD", 60, 120) is first
    assert len(market.calls) == 1
    clock.now = T0 + 50  # the candle closed
    later = await service.assess("BTC-USD", 60, 120)
    assert len(market.calls) == 2
    assert later.as_of == first.as_of + 60  # type: ignore[operator]


async def test_other_keys_are_separate() -> None:
    """A different symbol, granularity or window is its own answer."""
    clock = Clock(T0)
    market = CountingMarket(clock)
    service = _service(market, clock)
    for key in [("BTC-USD", 60, 100), ("ETH-USD", 60, 100), ("BTC-USD", 300, 100)]:
        await service.assess(*key)
    await service.assess("BTC-USD", 60, 150)
    assert len(market.calls) == 4


async def test_a_late_candle_is_looked_for_again_soon() -> None:
    """Newest candle missing: the answer is kept only for the short retry delay."""
    clock = Clock(T0)
    market = CountingMarket(clock, drop_last=True)
    service = _service(market, clock, late_candle_retry_seconds=2.0)
    await service.assess("BTC-USD", 60, 100)
    clock.now = T0 + 1.9
    await service.assess("BTC-USD", 60, 100)
    assert len(market.calls) == 1
    clock.now = T0 + 2.0
    await service.assess("BTC-USD", 60, 100)
    assert len(market.calls) == 2


async def test_concurrent_requests_share_one_computation() -> None:
    """50 concurrent misses for one key make one candle call."""
    clock = Clock(T0)
    market = CountingMarket(clock)
    market.gate.clear()
    service = _service(market, clock)
    tasks = [asyncio.create_task(service.assess("BTC-USD", 60, 100)) for _ in range(50)]
    await asyncio.sleep(0)
    market.gate.set()
    answers = await asyncio.gather(*tasks)
    assert len(market.calls) == 1
    assert all(a is answers[0] for a in answers)


async def test_failures_are_not_cached() -> None:
    """An error reaches the caller and the next request tries again."""
    clock = Clock(T0)
    market = CountingMarket(clock)
    service = _service(market, clock)
    with pytest.raises(Exception, match="BASE-QUOTE"):
        await service.assess("nonsense", 60, 100)
    with pytest.raises(Exception, match="BASE-QUOTE"):
        await service.assess("nonsense", 60, 100)
    assert len(market.calls) == 2


async def test_the_cache_can_be_turned_off() -> None:
    """answer_cache_size=0: every request reads candles."""
    clock = Clock(T0)
    market = CountingMarket(clock)
    service = _service(market, clock, answer_cache_size=0)
    await service.assess("BTC-USD", 60, 100)
    await service.assess("BTC-USD", 60, 100)
    assert len(market.calls) == 2


async def test_a_cached_answer_is_rendered_once() -> None:
    """The body of a cached answer is built once; a fresh answer after the close gets its own."""
    clock = Clock(T0)
    service = _service(CountingMarket(clock), clock)
    renders: list[Assessment] = []

    def render(answer: Assessment) -> bytes:
        renders.append(answer)
        return f"{answer.as_of}".encode()

    first = await service.assess("BTC-USD", 60, 120)
    body = service.rendered(first, render)
    assert service.rendered(await service.assess("BTC-USD", 60, 120), render) is body
    clock.now = T0 + 50  # the candle closed: a new answer, a new body
    later = await service.assess("BTC-USD", 60, 120)
    assert service.rendered(later, render) == f"{later.as_of}".encode()
    assert renders == [first, later]


async def test_an_uncached_answer_is_rendered_each_time() -> None:
    """With the answer cache off, every request renders its own answer."""
    clock = Clock(T0)
    service = _service(CountingMarket(clock), clock, answer_cache_size=0)
    answer = await service.assess("BTC-USD", 60, 120)
    calls: list[Assessment] = []

    def render(rendered: Assessment) -> bytes:
        calls.append(rendered)
        return b"x"

    service.rendered(answer, render)
    service.rendered(answer, render)
    assert len(calls) == 2
