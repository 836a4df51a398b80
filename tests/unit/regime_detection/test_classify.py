"""The classification rule, its hysteresis, its confidence, and its accuracy in steady state."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from regime_detection.classify import (
    Indicators,
    Thresholds,
    assess,
    decide,
    follow,
    raw_calls,
    recent,
    settle,
)
from regime_detection.config import Settings
from regime_detection.indicators import (
    adx,
    choppiness,
    efficiency_ratio,
    rolling_volatility,
    volatility,
)

from shared.market.models import Regime
from shared.market.simulated import SimulatedMarket

TH = Thresholds.from_settings(Settings())
CALM = Indicators(
    adx=40.0,
    choppiness=40.0,
    volatility=0.0005,
    volatility_annualized=0.4,
    fast_volatility_annualized=0.4,
    true_range_ratio=1.0,
    efficiency_ratio=0.6,
)


@pytest.mark.parametrize(
    ("changes", "regime"),
    [
        ({}, "TRENDING"),
        ({"fast_volatility_annualized": 1.5}, "VOLATILE"),  # at the ceiling
        ({"true_range_ratio": 2.5}, "VOLATILE"),  # at the ratio threshold
        ({"true_range_ratio": 2.49}, "TRENDING"),
        ({"true_range_ratio": None, "fast_volatility_annualized": 2.0}, "VOLATILE"),
        ({"true_range_ratio": None}, "TRENDING"),
        ({"efficiency_ratio": 0.35}, "TRENDING"),  # efficiency at its threshold trends
        ({"efficiency_ratio": 0.3499}, "CHOPPY"),
        ({"efficiency_ratio": 0.1, "true_range_ratio": 3.0}, "VOLATILE"),  # volatility first
        ({"adx": 5.0, "choppiness": 95.0}, "TRENDING"),  # ADX and CHOP are reported only
        ({"volatility_annualized": 3.0}, "TRENDING"),  # the window's volatility too
    ],
)
def test_the_rule_covers_every_combination(changes: dict[str, object], regime: str) -> None:
    """VOLATILE first (ratio or ceiling), then TRENDING on efficiency, CHOPPY for the rest."""
    assert decide(replace(CALM, **changes), TH).regime == regime  # type: ignore[arg-type]


def test_confidence_is_zero_at_a_threshold_and_grows_with_distance() -> None:
    """Confidence is in [0, 1], 0 at the deciding threshold, larger further past it."""
    trend = [decide(replace(CALM, efficiency_ratio=e), TH).confidence for e in (0.35, 0.45, 0.9)]
    assert trend[0] == 0.0
    assert 0.0 < trend[1] < trend[2] <= 1.0
    chop = [decide(replace(CALM, efficiency_ratio=e), TH).confidence for e in (0.34, 0.2, 0.0)]
    assert chop == sorted(chop)
    assert chop[0] < 0.1
    storm = [decide(replace(CALM, true_range_ratio=r), TH).confidence for r in (2.5, 3, 9)]
    assert storm == sorted(storm)
    assert storm[0] == 0.0
    assert storm[-1] == 1.0


def test_near_volatile_calls_are_less_confident() -> None:
    """A trend whose short-horizon volatility is close to a threshold is less confident."""
    calm = decide(replace(CALM, efficiency_ratio=0.9, true_range_ratio=0.8), TH)
    edgy = decide(replace(CALM, efficiency_ratio=0.9, true_range_ratio=2.4), TH)
    assert calm.regime == edgy.regime == "TRENDING"
    assert edgy.confidence < calm.confidence


@pytest.mark.parametrize(
    ("calls", "answer"),
    [
        ("TTTTTCTTTT", "TRENDING"),  # one odd candle does not flip the answer
        ("TTTTTCCTTT", "TRENDING"),  # nor two
        ("TTTTTTTCCC", "CHOPPY"),  # three in a row do
        ("TTTTCCCVVT", "CHOPPY"),  # VOLATILE twice, then not: CHOPPY holds
        ("TTTTTTCCCV", "CHOPPY"),
        ("CVCVCVCVCV", "CHOPPY"),  # alternating never confirms either
    ],
)
def test_the_answer_moves_only_after_confirm_candles_in_a_row(calls: str, answer: str) -> None:
    """Hysteresis: a new regime takes over once 3 consecutive candles call it."""
    names = {"T": Regime.TRENDING, "C": Regime.CHOPPY, "V": Regime.VOLATILE}
    assert settle([names[c] for c in calls], 3) == answer
    assert settle([names[c] for c in calls], 1) == names[calls[-1]]


def _day(symbol: str, seed: int, candles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = SimulatedMarket(seed)._rows(
        symbol, 60, 1_700_000_000 // 60 - candles, 1_700_000_000 // 60
    )
    return rows.high, rows.low, rows.close


def test_each_candle_is_called_as_decide_would_call_its_figures() -> None:
    """The vectorised calls of the replayed candles equal `decide` on each one's figures."""
    high, low, close = _day("ETH-USD", 5, 1740)
    seen: Counter[str] = Counter()
    for end in range(300, 1740, 29):
        part = slice(end - 300, end)
        figures = recent(high[part], low[part], close[part], granularity=60, th=TH)
        for i, call in enumerate(raw_calls(figures, TH)):
            ratio = float(figures.true_range_ratio[i])
            one = replace(
                CALM,
                fast_volatility_annualized=float(figures.fast_volatility_annualized[i]),
                true_range_ratio=ratio,
                efficiency_ratio=float(figures.efficiency_ratio[i]),
            )
            assert decide(one, TH).regime == call
            seen[call] += 1
    assert set(seen) == {"TRENDING", "CHOPPY", "VOLATILE"}


def test_the_answer_is_the_settled_replay_with_the_newest_candle_s_confidence() -> None:
    """`assess` answers `follow`'s settled regime; confidence 0 while the newest disagrees."""
    high, low, close = _day("BTC-USD", 7, 1740)
    disagreed = 0
    for end in range(300, 1740, 7):
        part = slice(end - 300, end)
        h, lo, c = high[part], low[part], close[part]
        reading = assess(h, lo, c, periods=100, granularity=60, th=TH)
        regime, figures = follow(h, lo, c, granularity=60, th=TH)
        assert reading.regime == regime
        assert reading.indicators is not None
        if raw_calls(figures, TH)[-1] != regime:
            disagreed += 1
            assert reading.confidence == 0.0
        else:
            assert reading.confidence == decide(reading.indicators, TH).confidence
    assert disagreed > 0  # the debounce held an answer at least once


def test_decide_reports_the_figures_it_decided_on() -> None:
    """The reading carries the figures behind its call, which the API shows beside it."""
    reading = decide(CALM, TH)
    assert reading.indicators == CALM


@pytest.mark.parametrize(
    ("changes", "fewest"),
    [
        ({}, 28),  # the defaults: ADX(14) needs 2 x 14
        ({"adx_period": 2, "chop_period": 30}, 31),  # CHOP(30) needs 30 true ranges
        ({"adx_period": 2, "fast_periods": 30}, 31),  # 30 fast true ranges
        ({"adx_period": 2, "efficiency_periods": 30}, 31),  # 30 moves for the efficiency
        ({"adx_period": 2, "chop_period": 2, "fast_periods": 2, "efficiency_periods": 2}, 4),
    ],
)
def test_min_candles_is_what_the_longest_indicator_needs(
    changes: dict[str, int], fewest: int
) -> None:
    """Each window can be the longest: asking fewer candles would leave an indicator NaN."""
    assert replace(TH, **changes).min_candles() == fewest


def test_the_fewest_candles_the_indicators_need_give_a_reading() -> None:
    """Exactly `min_candles` candles are enough: every figure has a value, no UNKNOWN."""
    close = np.linspace(100, 110, TH.min_candles())
    reading = assess(close + 1, close - 1, close, periods=100, granularity=60, th=TH)
    assert reading.regime == "TRENDING"
    assert reading.indicators is not None
    assert not math.isnan(reading.indicators.adx)


def test_the_replay_holds_the_last_replay_candles_figures() -> None:
    """`recent` gives exactly the newest `replay` candles' figures, each the indicator's own
    value at that candle: the debounce replays that many calls, no more, no fewer."""
    high, low, close = _day("ETH-USD", 5, 300)
    figures = recent(high, low, close, granularity=60, th=TH)
    efficiency = efficiency_ratio(close, TH.efficiency_periods)[-TH.replay :]
    fast = rolling_volatility(close, TH.fast_periods)[-TH.replay :] * math.sqrt(365 * 24 * 60)
    np.testing.assert_allclose(figures.efficiency_ratio, efficiency, rtol=1e-9)
    np.testing.assert_allclose(figures.fast_volatility_annualized, fast, rtol=1e-9)
    assert figures.true_range_ratio.shape == (TH.replay,)
    assert not np.isnan(figures.true_range_ratio).any()


def test_too_few_candles_is_unknown_with_a_reason() -> None:
    """Below 2 x 14 candles ADX has no value: UNKNOWN, confidence 0, a reason."""
    close = np.linspace(100, 110, 27)
    reading = assess(close + 1, close - 1, close, periods=100, granularity=60, th=TH)
    assert reading.regime == "UNKNOWN"
    assert reading.confidence == 0.0
    assert reading.reason is not None
    assert "27" in reading.reason


def test_the_typical_true_range_comes_from_the_lookback() -> None:
    """A calm history then a stormy last few candles: the ratio to the typical range calls it."""
    rng = np.random.default_rng(5)
    steps = np.concatenate((rng.normal(0, 0.0002, 290), rng.normal(0, 0.0012, 10)))
    close = 100 * np.exp(np.cumsum(steps))
    th = replace(TH, volatility_ceiling_annualized=10.0)  # only the ratio can fire
    reading = assess(close * 1.0001, close * 0.9999, close, periods=100, granularity=60, th=th)
    assert reading.indicators is not None
    assert reading.indicators.true_range_ratio is not None
    assert reading.indicators.true_range_ratio > 2.5
    assert reading.regime == "VOLATILE"


def test_the_reported_figures_cover_the_last_periods_candles() -> None:
    """Given 300 candles and periods=100, ADX, CHOP and volatility are the last 100's."""
    high, low, close = _day("BTC-USD", 7, 300)
    reading = assess(high, low, close, periods=100, granularity=60, th=TH)
    assert reading.indicators is not None
    h, lo, c = high[-100:], low[-100:], close[-100:]
    assert reading.indicators.volatility == volatility(c)
    assert reading.indicators.adx == float(adx(h, lo, c, TH.adx_period)[-1])
    assert reading.indicators.choppiness == float(choppiness(h, lo, c, TH.chop_period)[-1])
    per_year = math.sqrt(365 * 24 * 60)  # one-minute candles in a year
    assert reading.indicators.volatility_annualized == pytest.approx(volatility(c) * per_year)


def test_the_newest_true_range_ratio_is_the_fast_mean_over_the_typical() -> None:
    """The newest candle's ratio: the mean of its last `fast` true ranges (as shares of
    the previous close) over the lookback's typical (quantile) share."""
    high, low, close = _day("ETH-USD", 5, 300)
    figures = recent(high, low, close, granularity=60, th=TH)
    shares = (
        np.maximum(
            high[1:] - low[1:],
            np.maximum(np.abs(high[1:] - close[:-1]), np.abs(low[1:] - close[:-1])),
        )
        / close[:-1]
    )
    typical = np.sort(shares)[round(TH.typical_quantile * (shares.size - 1))]
    expected = shares[-TH.fast_periods :].mean() / typical
    assert figures.true_range_ratio[-1] == pytest.approx(expected, rel=1e-9)


def test_a_flat_market_has_no_ratio_and_is_choppy() -> None:
    """No range at all: the ratio is null, efficiency 0, the answer CHOPPY, nothing warns."""
    flat = np.full(300, 50.0)
    with np.errstate(all="raise"):
        reading = assess(flat, flat, flat, periods=100, granularity=60, th=TH)
    assert reading.regime == "CHOPPY"
    assert reading.indicators is not None
    assert reading.indicators.true_range_ratio is None
    assert reading.indicators.efficiency_ratio == 0.0


@pytest.mark.parametrize(("symbol", "seed"), [("BTC-USD", 7), ("ETH-USD", 11), ("FOO-USD", 3)])
def test_accuracy_over_a_day_of_simulated_minutes(symbol: str, seed: int) -> None:
    """Where the window lies inside one labelled stretch, >= 90% of calls match the truth."""
    periods, lookback, day = 100, 300, 1440
    end = 1_700_000_000 // 60
    market = SimulatedMarket(seed)
    first = end - day - lookback
    rows = market._rows(symbol, 60, first, end)
    truth = market.regimes(symbol, 60, first, end)
    confusion: Counter[tuple[str, str]] = Counter()
    for i in range(lookback, lookback + day):
        labels = set(truth[i - periods + 1 : i + 1])
        if len(labels) != 1:
            continue  # the window straddles two stretches: no single truth
        part = slice(i - lookback + 1, i + 1)
        reading = assess(
            rows.high[part],
            rows.low[part],
            rows.close[part],
            periods=periods,
            granularity=60,
            th=TH,
        )
        confusion[(labels.pop(), reading.regime)] += 1
    scored = sum(confusion.values())
    right = sum(n for (true, called), n in confusion.items() if true == called)
    names = ["TRENDING", "CHOPPY", "VOLATILE", "UNKNOWN"]
    print(
        f"\n{symbol} seed {seed}: {right}/{scored} = {right / scored:.1%} (rows truth, cols call)"
    )
    print(" " * 10 + "".join(f"{n:>10}" for n in names))
    for true in names[:3]:
        print(f"{true:>10}" + "".join(f"{confusion[(true, n)]:>10}" for n in names))
    assert scored >= 400
    assert right / scored >= 0.9
