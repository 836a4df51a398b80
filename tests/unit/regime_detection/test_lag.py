"""Regime lag at transitions, against the simulator's ground truth (README: Regime lag)."""

from __future__ import annotations

import pytest
from regime_detection.classify import Thresholds, follow
from regime_detection.config import Settings

from shared.market.simulated import SimulatedMarket
from tests.unit.regime_detection.lag import NAMES, Score, p90

LOOKBACK, DAY = 300, 1440  # what the service fetches per answer; a day of 1-minute candles
END = 1_700_000_000 // 60
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "FOO-USD", "BAR-EUR", "DOGE-USD")
SEEDS = (3, 5, 7, 11)


def answers_over_a_day(symbol: str, seed: int, th: Thresholds) -> tuple[list[str], list[str]]:
    """The true regimes (with the lookback before the day) and the answer at each minute,
    each from the same 300 candles the service would fetch at that minute."""
    market = SimulatedMarket(seed)
    first = END - DAY - LOOKBACK
    rows = market._rows(symbol, 60, first, END)
    truth: list[str] = list(market.regimes(symbol, 60, first, END))
    answers: list[str] = []
    for i in range(LOOKBACK, LOOKBACK + DAY):
        part = slice(i - LOOKBACK + 1, i + 1)
        regime, _ = follow(rows.high[part], rows.low[part], rows.close[part], granularity=60, th=th)
        answers.append(regime)
    return truth, answers


@pytest.fixture(scope="module")
def score() -> Score:
    th = Thresholds.from_settings(Settings())
    total = Score()
    for symbol in SYMBOLS:
        for seed in SEEDS:
            total.add(*answers_over_a_day(symbol, seed, th))
    print(f"\n{len(SYMBOLS) * len(SEEDS)} simulated days of 1-minute candles, lag in candles\n")
    print(total.table())
    return total


@pytest.mark.parametrize("pair", [(a, b) for a in NAMES for b in NAMES if a != b])
def test_the_answer_follows_every_switch_within_20_candles(
    score: Score, pair: tuple[str, str]
) -> None:
    """p90 of the lag is at most 20 candles for each pair of regimes, over >= 10 switches."""
    lags = score.lags[pair]
    assert len(lags) >= 10
    assert p90(lags) <= 20


def test_steady_state_accuracy_and_flip_flops(score: Score) -> None:
    """Past the first 20 candles of a stretch >= 95% of answers are right; < 1% flip-flop."""
    assert score.accuracy() >= 0.95
    assert score.flip_share() < 0.01


def test_the_scorer_counts_lag_steady_state_and_flip_flops() -> None:
    """A known answer sequence scores the lag, accuracy and flip-flops worked out by hand."""
    truth = ["CHOPPY"] * 30 + ["TRENDING"] * 40
    answers = truth[:]
    answers[30:37] = ["CHOPPY"] * 7  # settles on TRENDING at the 8th trending candle ...
    answers[50] = "VOLATILE"  # ... then one odd answer: a flip-flop, wrong in steady state
    score = Score()
    score.add(truth, answers[5:])  # the first 5 candles are lookback: truth only
    assert score.lags == {("CHOPPY", "TRENDING"): [8]}
    assert score.flips == 1
    # Steady state: candles 5-29 (the first stretch began before the lookback) and 50-69.
    assert sum(score.confusion.values()) == 25 + 20
    assert score.accuracy() == pytest.approx(44 / 45)


def test_an_answer_that_never_settles_counts_as_the_stretch_length_plus_one() -> None:
    """Calls that keep missing the new regime give the censored lag, not a small one."""
    truth = ["TRENDING"] * 10 + ["VOLATILE"] * 30
    answers = ["TRENDING"] * 40
    score = Score()
    score.add(truth, answers)
    assert score.lags[("TRENDING", "VOLATILE")] == [31]
