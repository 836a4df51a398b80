"""The simulated market: deterministic, well-formed candles with known regimes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from shared.market.simulated import SimulatedMarket
from shared.market.simulation_paths import BLOCK
from shared.market.source import UnknownSymbolError

NOW = 1_700_000_000.0


def _market(seed: int = 7, now: float = NOW) -> SimulatedMarket:
    return SimulatedMarket(seed, clock=lambda: now)


async def test_same_inputs_give_the_same_candles_across_instances() -> None:
    """Two instances (two replicas, a restart) agree candle for candle."""
    first = await _market().candles("BTC-USD", 60, 300)
    second = await _market().candles("BTC-USD", 60, 300)
    assert first.candles == second.candles
    assert first.source == "simulated"


async def test_a_candle_does_not_depend_on_when_it_is_asked_for() -> None:
    """A candle read now and read an hour later is the same candle."""
    early = await _market(now=NOW).candles("ETH-USD", 300, 300)
    late = await _market(now=NOW + 3600).candles("ETH-USD", 300, 300)
    shared_times = {c.time for c in early.candles} & {c.time for c in late.candles}
    assert len(shared_times) == 300 - 12
    by_time = {c.time: c for c in late.candles}
    assert all(by_time[c.time] == c for c in early.candles if c.time in shared_times)


async def test_different_seeds_and_symbols_give_different_markets() -> None:
    """The seed and the symbol both change the path."""
    base = await _market(7).candles("BTC-USD", 60, 50)
    other_seed = await _market(8).candles("BTC-USD", 60, 50)
    other_symbol = await _market(7).candles("FOO-USD", 60, 50)
    assert [c.close for c in base.candles] != [c.close for c in other_seed.candles]
    assert [c.close for c in base.candles] != [c.close for c in other_symbol.candles]


@pytest.mark.parametrize("granularity", [60, 300, 900, 3600, 21600, 86400])
async def test_candles_are_well_formed_and_continuous(granularity: int) -> None:
    """low <= open, close <= high, volume > 0, each open is the previous close."""
    series = await _market().candles("SOL-USD", granularity, 300)
    rows = np.array([[c.open, c.high, c.low, c.close, c.volume] for c in series.candles])
    o, h, lo, c, v = rows.T
    assert len(series.candles) == 300
    assert np.all(lo <= np.minimum(o, c))
    assert np.all(np.maximum(o, c) <= h)
    assert np.all(v > 0)
    assert np.all(lo > 0)
    np.testing.assert_allclose(o[1:], c[:-1], rtol=1e-12)
    times = np.array([c.time for c in series.candles])
    assert np.all(np.diff(times) == granularity)


async def test_price_is_continuous_across_block_boundaries() -> None:
    """Where one generated block ends, the next opens at its close."""
    boundary = (int(NOW) // 60 // BLOCK) * BLOCK * 60
    series = await _market(now=boundary + 10 * 60).candles("BTC-USD", 60, 20)
    closes = [c.close for c in series.candles]
    opens = [c.open for c in series.candles]
    assert opens[1:] == pytest.approx(closes[:-1], rel=1e-12)
    assert any(c.time == boundary for c in series.candles)


async def test_only_closed_candles_are_returned() -> None:
    """The last candle closed at or before the clock; the forming one is left out."""
    now = 1_700_000_000.0 + 30  # half-way through a minute
    series = await _market(now=now).candles("BTC-USD", 60, 5)
    assert series.candles[-1].time + 60 <= now
    assert series.candles[-1].time + 120 > now
    on_the_edge = await _market(now=1_700_000_040.0).candles("BTC-USD", 60, 1)
    assert on_the_edge.candles[-1].time == 1_699_999_980


async def test_live_price_lies_within_the_forming_candle() -> None:
    """The price moves from the forming candle's open towards its close."""
    now = NOW + 45
    market = _market(now=now)
    quote = await market.price("BTC-USD")
    opens_at = int(now) // 60 * 60
    forming = (await _market(now=opens_at + 60).candles("BTC-USD", 60, 1)).candles[-1]
    assert forming.time == opens_at
    assert forming.low <= quote.price <= forming.high
    assert quote.source == "simulated"
    assert quote.time.timestamp() == now


@pytest.mark.parametrize(
    ("symbol", "low", "high"),
    [("BTC-USD", 60_000, 100_000), ("ETH-USD", 2_000, 5_000), ("SOL-USD", 100, 250)],
)
async def test_prices_are_realistic_per_symbol(symbol: str, low: float, high: float) -> None:
    """Well-known symbols close near their real price, from 1-minute to hourly candles."""
    for granularity in (60, 300, 3600):
        series = await _market().candles(symbol, granularity, 300)
        assert all(low <= c.close <= high for c in series.candles)


async def test_any_well_formed_symbol_works_and_malformed_is_unknown() -> None:
    """FOO-USD gets a hashed price; a malformed id is an unknown symbol."""
    series = await _market().candles("FOO-USD", 60, 10)
    assert len(series.candles) == 10
    with pytest.raises(UnknownSymbolError):
        await _market().candles("foo", 60, 10)


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_ground_truth_covers_all_three_regimes_over_a_day(seed: int) -> None:
    """A day of 1-minute candles holds trending, choppy and volatile stretches."""
    market = _market(seed)
    end = int(NOW) // 60
    labels = market.regimes("BTC-USD", 60, end - 1440, end)
    counts = Counter(labels)
    print(counts)
    assert set(counts) == {"TRENDING", "CHOPPY", "VOLATILE"}
    assert market.regime_at("BTC-USD", 60, (end - 1) * 60 + 59.5) == labels[-1]


def test_regimes_come_in_stretches() -> None:
    """Labels change only at stretch boundaries, at least 90 candles apart."""
    end = int(NOW) // 60
    labels = _market().regimes("BTC-USD", 60, end - 3 * 1440, end)
    changes = [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    assert len(changes) >= 10
    assert min(np.diff(changes)) >= 90
