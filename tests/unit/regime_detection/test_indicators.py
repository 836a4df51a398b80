"""Indicator parity: ADX against TA-Lib, CHOP against a plain loop, the flat-window rule."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view
from regime_detection.indicators import (
    FloatArray,
    adx,
    choppiness,
    efficiency_ratio,
    quantile,
    rolling_mean,
    rolling_volatility,
    smooth,
    volatility,
)

# The team's data folder beside the checkout; TRADESTACK_DATA points elsewhere (`make mutate`).
DATA = Path(
    os.environ.get(
        "TRADESTACK_DATA", Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    )
)
FILES = ["btc_5m_2023-01.csv", "eth_btc_1m_2017-11.csv"]


def _load(name: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    rows = np.loadtxt(path, delimiter=",", skiprows=1)
    return rows[:, 2], rows[:, 3], rows[:, 4]


def _synthetic(kind: str, size: int = 2000, seed: int = 1) -> tuple[FloatArray, ...]:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0005 if kind == "trend" else 0.0, 0.002, size)
    close = 100 * np.exp(np.cumsum(steps))
    if kind == "flat":
        close[300:1300] = close[299]  # long flat run: smoothed TR decays through TA-Lib's zero
    wick = np.abs(rng.normal(0, 0.001, (2, size))) * close
    if kind == "flat":
        wick[:, 300:1300] = 0.0
    opens = np.concatenate(([close[0]], close[:-1]))
    return np.maximum(opens, close) + wick[0], np.minimum(opens, close) - wick[1], close


def _chop_reference(high: FloatArray, low: FloatArray, close: FloatArray, n: int) -> FloatArray:
    out = np.full(high.size, np.nan)
    for i in range(n, high.size):
        tr_sum = 0.0
        for j in range(i - n + 1, i + 1):
            tr_sum += max(high[j], close[j - 1]) - min(low[j], close[j - 1])
        span = max(high[i - n + 1 : i + 1]) - min(low[i - n + 1 : i + 1])
        out[i] = 100.0 if span == 0 else 100 * math.log10(tr_sum / span) / math.log10(n)
    return out


@pytest.mark.parametrize("name", FILES)
def test_adx_equals_talib_on_every_bar_of_real_candles(name: str) -> None:
    """Real, gappy, flat-in-places candles: ADX(14) matches TA-Lib to 1e-9 relative."""
    high, low, close = _load(name)
    ours = adx(high, low, close, 14)
    theirs = talib.ADX(high, low, close, timeperiod=14)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0, equal_nan=True)


@pytest.mark.parametrize("kind", ["walk", "trend", "flat"])
@pytest.mark.parametrize("period", [5, 14, 30])
@pytest.mark.parametrize("scale", [1.0, 1e-12])
def test_adx_equals_talib_on_synthetic_series(kind: str, period: int, scale: float) -> None:
    """Random walks, trends and long flat runs, at any price scale, agree with TA-Lib."""
    high, low, close = (scale * a for a in _synthetic(kind))
    ours = adx(high, low, close, period)
    theirs = talib.ADX(high, low, close, timeperiod=period)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0, equal_nan=True)


@pytest.mark.parametrize("size", [27, 28, 29, 60])
def test_adx_starts_at_bar_2n_minus_1(size: int) -> None:
    """Too few bars give only NaN; the first value is at bar 27 for ADX(14)."""
    high, low, close = _synthetic("walk", size)
    ours = adx(high, low, close, 14)
    theirs = talib.ADX(high, low, close, timeperiod=14)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0, equal_nan=True)
    assert np.isnan(ours[:27]).all()


def test_adx_of_a_perfectly_flat_market_is_zero_like_talib() -> None:
    """No range at all: every DX is skipped, ADX stays 0 (TA-Lib's answer)."""
    flat = np.full(60, 50.0)
    np.testing.assert_array_equal(adx(flat, flat, flat, 14)[27:], talib.ADX(flat, flat, flat)[27:])
    assert adx(flat, flat, flat, 14)[-1] == 0.0


def test_bars_with_range_but_no_directional_movement_leave_adx_like_talib() -> None:
    """Bars that range inside the same high and low have a true range but no +DM or -DM:
    their DI sum is 0, so they give no DX (not 0/0) and ADX holds, as in TA-Lib; a
    trend after them moves it from there."""
    high, low = np.full(80, 11.0), np.full(80, 9.0)
    close = np.tile([10.0, 10.5], 40)
    climb = np.arange(40) * 0.5
    high[40:] += climb
    low[40:] += climb
    close[40:] += climb
    ours = adx(high, low, close, 14)
    theirs = talib.ADX(high, low, close, timeperiod=14)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert (ours[27:41] == 0.0).all()
    assert ours[-1] > 0.0


def test_smoothing_matches_the_recurrence_across_chunks() -> None:
    """Wilder's smoothing in closed form equals the step-by-step recurrence."""
    x = np.random.default_rng(3).uniform(0, 2, 1000)
    expected, s = np.empty(1000), 5.0
    for i, value in enumerate(x):
        s = s * (13 / 14) + value
        expected[i] = s
    np.testing.assert_allclose(smooth(x, 13 / 14, 5.0), expected, rtol=1e-12)


@pytest.mark.parametrize("name", FILES)
def test_choppiness_equals_a_reference_loop_on_real_candles(name: str) -> None:
    """CHOP(14) over real candles equals the formula computed bar by bar."""
    high, low, close = _load(name)
    part = slice(0, 3000)  # the loop is slow; 3000 bars of each file are plenty
    h, lo, c = high[part], low[part], close[part]
    np.testing.assert_allclose(
        choppiness(h, lo, c, 14), _chop_reference(h, lo, c, 14), rtol=1e-9, equal_nan=True
    )


@pytest.mark.parametrize("kind", ["walk", "trend", "flat"])
def test_choppiness_equals_a_reference_loop_on_synthetic_series(kind: str) -> None:
    """CHOP agrees with the loop on synthetic series, flat windows included."""
    high, low, close = _synthetic(kind, 800)
    ours = choppiness(high, low, close, 14)
    np.testing.assert_allclose(
        ours, _chop_reference(high, low, close, 14), rtol=1e-9, equal_nan=True
    )
    if kind == "flat":
        assert ours[400] == 100.0


def test_a_flat_window_scores_100_without_dividing_by_zero() -> None:
    """Highest high == lowest low: CHOP is 100 by rule, and nothing warns."""
    flat = np.full(30, 7.0)
    with np.errstate(all="raise"):
        chop = choppiness(flat, flat, flat, 14)
    assert np.isnan(chop[:14]).all()
    assert (chop[14:] == 100.0).all()


def test_choppiness_needs_period_true_ranges() -> None:
    """`period` bars have only period - 1 true ranges: no value yet (and no error); one
    bar more gives the first."""
    high, low, close = _synthetic("walk", 15)
    assert np.isnan(choppiness(high[:14], low[:14], close[:14], 14)).all()
    assert np.isnan(choppiness(high, low, close, 14)[:14]).all()
    assert not math.isnan(choppiness(high, low, close, 14)[14])


def test_choppiness_of_a_straight_line_is_zero_and_of_a_range_is_high() -> None:
    """A steady climb scores near 0; a price bouncing in a band scores 100."""
    line = np.arange(1.0, 41.0)
    # 14 unit true ranges (the first from the close before the window) over a span of 13.
    expected = 100 * math.log10(14 / 13) / math.log10(14)
    assert choppiness(line, line, line, 14)[-1] == pytest.approx(expected, rel=1e-12)
    band = np.tile([10.0, 11.0], 20)
    assert choppiness(band, band, band, 14)[-1] == pytest.approx(100.0)


def test_volatility_is_the_sample_std_of_log_returns() -> None:
    """Per candle, ddof=1, NaN with fewer than two returns."""
    close = np.array([100.0, 101.0, 99.0, 102.0])
    returns = np.log(close[1:] / close[:-1])
    assert volatility(close) == pytest.approx(float(np.std(returns, ddof=1)), rel=1e-12)
    assert math.isnan(volatility(close[:2]))
    two = returns[:2]  # three closes, two returns: the fewest that have a sample std
    assert volatility(close[:3]) == pytest.approx(float(np.std(two, ddof=1)), rel=1e-12)


def test_rolling_figures_equal_their_windowed_definitions() -> None:
    """Rolling mean and volatility by cumulative sums equal numpy over each window."""
    high, low, close = _synthetic("walk", 300)
    x = high - low
    expected_mean = sliding_window_view(x, 10).mean(axis=1)
    np.testing.assert_allclose(rolling_mean(x, 10)[9:], expected_mean, rtol=1e-9)
    assert np.isnan(rolling_mean(x, 10)[:9]).all()
    returns = np.diff(np.log(close))
    expected_vol = sliding_window_view(returns, 10).std(axis=1, ddof=1)
    np.testing.assert_allclose(rolling_volatility(close, 10)[10:], expected_vol, rtol=1e-9)
    assert np.isnan(rolling_volatility(close, 10)[:10]).all()
    assert rolling_volatility(close, 10)[-1] == pytest.approx(volatility(close[-11:]), rel=1e-9)


def test_rolling_mean_has_a_value_once_period_values_exist() -> None:
    """Exactly `period` values give one mean, at the last index."""
    x = np.arange(1.0, 11.0)
    out = rolling_mean(x, 10)
    assert np.isnan(out[:9]).all()
    assert out[9] == 5.5


def test_efficiency_ratio_does_not_depend_on_the_price_scale() -> None:
    """A ratio of price moves: the same on prices 1e-12 times smaller (the window sums
    keep their precision however small the moves are)."""
    _, _, close = _synthetic("walk", 300)
    np.testing.assert_allclose(
        efficiency_ratio(close * 1e-12, 14), efficiency_ratio(close, 14), rtol=1e-9, equal_nan=True
    )


def test_efficiency_ratio_is_one_on_a_line_and_low_on_a_back_and_forth() -> None:
    """Net move over path: 1 for a straight climb, 0 when it ends where it began or is flat."""
    line = np.arange(1.0, 31.0)
    np.testing.assert_allclose(efficiency_ratio(line, 14)[14:], 1.0)
    assert np.isnan(efficiency_ratio(line, 14)[:14]).all()
    zigzag = np.tile([10.0, 11.0], 15)
    assert efficiency_ratio(zigzag, 14)[-1] == 0.0
    with np.errstate(all="raise"):
        assert efficiency_ratio(np.full(20, 3.0), 14)[-1] == 0.0
    close = np.array([1.0, 2.0, 1.5, 3.0])  # net 2 over a path of 1 + 0.5 + 1.5
    assert efficiency_ratio(close, 3)[-1] == pytest.approx(2 / 3)


def test_efficiency_ratio_falls_to_zero_once_a_long_series_stalls() -> None:
    """A lookback-sized series that climbs, then stops: every window with a move in it
    went straight (1), every window wholly inside the stall scores exactly 0 (set, not
    left to whatever memory the division would leave there)."""
    for climb in range(100, 301, 10):  # lookbacks of 200 to 600 candles
        close = np.concatenate((np.arange(float(climb)), np.full(climb, climb - 1.0)))
        ratio = efficiency_ratio(close, 14)
        assert (ratio[14 : climb + 13] == 1.0).all()
        assert (ratio[climb + 13 :] == 0.0).all()


def test_quantile_is_the_nearest_rank_value() -> None:
    """The typical level is a value of the data: the nearest rank, like numpy's 'nearest'."""
    x = np.random.default_rng(2).uniform(0, 1, 299)
    for q in (0.1, 0.25, 0.5, 0.9):
        assert quantile(x, q) == np.quantile(x, q, method="nearest")
