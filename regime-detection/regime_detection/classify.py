"""From candles to a regime: measure, call each recent candle, then settle with hysteresis.

Each candle gets a raw call from short-horizon figures (the rule, newest candles only):

    VOLATILE  mean true range of the last `fast` candles >= ratio x the lookback's
              typical (median) true range, or their log-return std, annualised, >= the
              ceiling
    TRENDING  otherwise, Kaufman's efficiency ratio over `efficiency` closes >= threshold
    CHOPPY    otherwise
    UNKNOWN   too few candles for the indicators (confidence 0, with a reason)

The answer is the raw calls of the last `replay` candles run through a debounce: it moves
to a new regime only once `confirm` candles in a row call it, so one odd candle does not
flip it. Replaying (rather than remembering) keeps the answer a pure function of the
candles: every replica and every restart agrees.

Confidence is how far the newest candle's figures sit past the thresholds that support
the answer, each distance scaled by its span (0 at the threshold, 1 a full span beyond);
0 while the newest candle already points elsewhere. ADX(14) (TA-Lib's), CHOP(14) and the
window's volatility are reported beside the figures that decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from regime_detection import indicators
from regime_detection.config import Settings
from regime_detection.indicators import FloatArray
from shared.market.models import Regime

CALLS = (Regime.TRENDING, Regime.CHOPPY, Regime.VOLATILE)  # by code in `raw_calls`
SECONDS_PER_YEAR = 365 * 24 * 3600  # crypto trades every day of the year


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The rule's windows and thresholds (defaults live in `Settings`)."""

    adx_period: int
    chop_period: int
    fast_periods: int
    typical_quantile: float
    true_range_ratio: float
    volatility_ceiling_annualized: float
    efficiency_periods: int
    efficiency: float
    confirm: int
    replay: int
    efficiency_span: float
    volatility_span: float

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        """The thresholds configured in `s`."""
        return cls(
            adx_period=s.adx_period,
            chop_period=s.chop_period,
            fast_periods=s.fast_volatility_periods,
            typical_quantile=s.typical_range_quantile,
            true_range_ratio=s.true_range_ratio_threshold,
            volatility_ceiling_annualized=s.volatility_ceiling_annualized,
            efficiency_periods=s.efficiency_periods,
            efficiency=s.efficiency_threshold,
            confirm=s.confirm_candles,
            replay=s.replay_candles,
            efficiency_span=s.confidence_efficiency_span,
            volatility_span=s.confidence_volatility_span,
        )

    def min_candles(self) -> int:
        """The fewest candles that give every indicator a value."""
        longest = max(self.chop_period, self.fast_periods, self.efficiency_periods)
        return max(2 * self.adx_period, longest + 1, 3)


@dataclass(frozen=True, slots=True)
class Indicators:
    """The window's figures (reported) and the newest candle's short-horizon ones (decide)."""

    adx: float
    choppiness: float
    volatility: float
    volatility_annualized: float
    fast_volatility_annualized: float
    true_range_ratio: float | None  # None when the typical true range is zero (flat market)
    efficiency_ratio: float


@dataclass(frozen=True, slots=True)
class Reading:
    regime: Regime
    confidence: float
    indicators: Indicators | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Recent:
    """The deciding figures of the last few candles, oldest first (NaN: no ratio)."""

    fast_volatility_annualized: FloatArray
    true_range_ratio: FloatArray
    efficiency_ratio: FloatArray


def recent(
    high: FloatArray, low: FloatArray, close: FloatArray, *, granularity: int, th: Thresholds
) -> Recent:
    """The deciding figures of the last `th.replay` candles (fewer if the data is short)."""
    # True range as a share of the price, so the typical level holds while the price moves.
    true_range = indicators.true_range(high, low, close) / close[:-1]
    typical = indicators.quantile(true_range, th.typical_quantile)
    # Only the newest candles are called: the figures of the last `replay` need this many.
    first = max(th.fast_periods, th.efficiency_periods)
    tail = min(close.size, th.replay + first)
    c, tr = close[-tail:], true_range[-(tail - 1) :]
    fast_range = np.concatenate(([np.nan], indicators.rolling_mean(tr, th.fast_periods)))
    ratio = fast_range / typical if typical > 0 else np.full(tail, np.nan)
    per_year = math.sqrt(SECONDS_PER_YEAR / granularity)
    last = slice(max(first, tail - th.replay), tail)  # every figure has a value from `first`
    return Recent(
        fast_volatility_annualized=indicators.rolling_volatility(c, th.fast_periods)[last]
        * per_year,
        true_range_ratio=ratio[last],
        efficiency_ratio=indicators.efficiency_ratio(c, th.efficiency_periods)[last],
    )


def _storm(fast_annualized: FloatArray, ratio: FloatArray, th: Thresholds) -> FloatArray:
    """How far volatility is towards VOLATILE: >= 1 means a threshold is crossed."""
    by_ceiling = fast_annualized / th.volatility_ceiling_annualized
    return np.fmax(by_ceiling, ratio / th.true_range_ratio)  # fmax: a NaN ratio drops out


def raw_calls(figures: Recent, th: Thresholds) -> list[Regime]:
    """The rule (module docstring) applied to each candle on its own."""
    storm = _storm(figures.fast_volatility_annualized, figures.true_range_ratio, th)
    codes = np.where(storm >= 1.0, 2, np.where(figures.efficiency_ratio >= th.efficiency, 0, 1))
    return [CALLS[code] for code in codes.tolist()]


def settle(calls: list[Regime], confirm: int) -> Regime:
    """The debounced answer: a new regime takes over after `confirm` calls in a row."""
    answer, streak = calls[0], 0
    for previous, call in pairwise(calls):
        if call == answer:
            streak = 0
            continue
        streak = streak + 1 if call == previous else 1
        if streak >= confirm:
            answer, streak = call, 0
    return answer


def follow(
    high: FloatArray, low: FloatArray, close: FloatArray, *, granularity: int, th: Thresholds
) -> tuple[Regime, Recent]:
    """The settled answer at the newest candle, and the figures it came from."""
    figures = recent(high, low, close, granularity=granularity, th=th)
    return settle(raw_calls(figures, th), th.confirm), figures


def _margin(distance: float, span: float) -> float:
    return float(np.clip(distance / span, 0.0, 1.0))


def confidence(regime: Regime, ind: Indicators, th: Thresholds) -> float:
    """How far the figures sit past the thresholds that make `regime` (0 if they don't)."""
    ratio = np.nan if ind.true_range_ratio is None else ind.true_range_ratio
    storm = float(_storm(np.array([ind.fast_volatility_annualized]), np.array([ratio]), th)[0])
    if regime is Regime.VOLATILE:
        return _margin(storm - 1.0, th.volatility_span)
    calm = _margin(1.0 - storm, th.volatility_span)
    above = ind.efficiency_ratio - th.efficiency
    return min(calm, _margin(above if regime is Regime.TRENDING else -above, th.efficiency_span))


def decide(ind: Indicators, th: Thresholds) -> Reading:
    """The rule applied to one candle's figures, with its confidence (no hysteresis)."""
    figures = Recent(
        np.array([ind.fast_volatility_annualized]),
        np.array([np.nan if ind.true_range_ratio is None else ind.true_range_ratio]),
        np.array([ind.efficiency_ratio]),
    )
    regime = raw_calls(figures, th)[0]
    return Reading(regime, confidence(regime, ind, th), ind)


def assess(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    *,
    periods: int,
    granularity: int,
    th: Thresholds,
) -> Reading:
    """The regime at the newest candle: ADX, CHOP and volatility over the last `periods`
    candles, the rule on the newest ones, the typical true range over all of them."""
    used = min(periods, close.size)
    if used < th.min_candles():
        reason = f"{used} candles in the window; the indicators need at least {th.min_candles()}"
        return Reading(Regime.UNKNOWN, 0.0, None, reason)
    regime, figures = follow(high, low, close, granularity=granularity, th=th)
    window = slice(close.size - used, close.size)
    h, lo, c = high[window], low[window], close[window]
    vol = indicators.volatility(c)
    ratio = float(figures.true_range_ratio[-1])
    ind = Indicators(
        adx=float(indicators.adx(h, lo, c, th.adx_period)[-1]),
        choppiness=float(indicators.choppiness(h, lo, c, th.chop_period)[-1]),
        volatility=vol,
        volatility_annualized=vol * math.sqrt(SECONDS_PER_YEAR / granularity),
        fast_volatility_annualized=float(figures.fast_volatility_annualized[-1]),
        true_range_ratio=None if math.isnan(ratio) else ratio,
        efficiency_ratio=float(figures.efficiency_ratio[-1]),
    )
    return Reading(regime, confidence(regime, ind, th), ind)
