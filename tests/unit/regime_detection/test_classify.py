"""The classification rule, its confidence, and its accuracy against simulated ground truth."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from regime_detection.classify import Indicators, Thresholds, assess, decide

from shared.market.simulated import SimulatedMarket

TH = Thresholds()
CALM = Indicators(
    adx=40.0,
    choppiness=40.0,
    volatility=0.0005,
    volatility_annualized=0.4,
    baseline_volatility=0.0005,
    volatility_ratio=1.0,
)


@pytest.mark.parametrize(
    ("changes", "regime"),
    [
        ({}, "TRENDING"),
        ({"volatility_annualized": 1.5}, "VOLATILE"),  # at the ceiling
        ({"volatility_ratio": 1.5}, "VOLATILE"),  # at the ratio threshold
        ({"volatility_ratio": None, "volatility_annualized": 2.0}, "VOLATILE"),
        ({"volatility_ratio": None}, "TRENDING"),
        ({"adx": 25.0}, "TRENDING"),  # ADX at its threshold counts
        ({"adx": 24.99}, "CHOPPY"),
        ({"choppiness": 61.8}, "CHOPPY"),  # CHOP at its threshold does not trend
        ({"adx": 10.0, "choppiness": 80.0}, "CHOPPY"),
        ({"adx": 80.0, "choppiness": 90.0}, "CHOPPY"),
    ],
)
def test_the_rule_covers_every_combination(changes: dict[str, object], regime: str) -> None:
    """VOLATILE first, then TRENDING needs both ADX and CHOP, CHOPPY for the rest."""
    assert decide(replace(CALM, **changes), TH).regime == regime  # type: ignore[arg-type]


def test_confidence_is_zero_at_a_threshold_and_grows_with_distance() -> None:
    """Confidence is in [0, 1], 0 at the deciding threshold, larger further past it."""
    at = decide(replace(CALM, adx=25.0), TH).confidence
    near = decide(replace(CALM, adx=30.0), TH).confidence
    far = decide(replace(CALM, adx=60.0), TH).confidence
    assert at == 0.0
    assert 0.0 < near < far <= 1.0
    storm = [decide(replace(CALM, volatility_annualized=v), TH).confidence for v in (1.5, 2, 9)]
    assert storm == sorted(storm)
    assert storm[0] == 0.0
    assert storm[-1] == 1.0


def test_choppy_confidence_follows_the_stronger_failed_test() -> None:
    """CHOPPY by a wide CHOP margin is confident even with ADX near its threshold."""
    quiet = replace(CALM, volatility_ratio=0.5, volatility_annualized=0.1)
    reading = decide(replace(quiet, adx=24.0, choppiness=80.0), TH)
    assert reading.regime == "CHOPPY"
    assert reading.confidence == pytest.approx(1.0)


def test_near_volatile_calls_are_less_confident() -> None:
    """A trend whose volatility is close to the ceiling is not called with confidence."""
    calm = decide(replace(CALM, adx=60, choppiness=20, volatility_annualized=0.2), TH)
    edgy = decide(replace(CALM, adx=60, choppiness=20, volatility_annualized=1.4), TH)
    assert calm.regime == edgy.regime == "TRENDING"
    assert edgy.confidence < calm.confidence


def test_too_few_candles_is_unknown_with_a_reason() -> None:
    """Below 2 x 14 candles ADX has no value: UNKNOWN, confidence 0, a reason."""
    close = np.linspace(100, 110, 27)
    reading = assess(close + 1, close - 1, close, periods=100, granularity=60, th=TH)
    assert reading.regime == "UNKNOWN"
    assert reading.confidence == 0.0
    assert reading.reason is not None
    assert "27" in reading.reason


def test_the_baseline_is_the_lookback_beyond_the_window() -> None:
    """A calm history then a stormy window: the ratio to the baseline calls VOLATILE."""
    rng = np.random.default_rng(5)
    steps = np.concatenate((rng.normal(0, 0.0002, 200), rng.normal(0, 0.0008, 100)))
    close = 100 * np.exp(np.cumsum(steps))
    th = replace(TH, volatility_ceiling_annualized=10.0)  # only the ratio can fire
    reading = assess(close * 1.0001, close * 0.9999, close, periods=100, granularity=60, th=th)
    assert reading.indicators is not None
    assert reading.indicators.volatility_ratio is not None
    assert reading.indicators.volatility_ratio > 1.5
    assert reading.regime == "VOLATILE"


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
