"""From candles to a regime: measure the indicators, then one rule that covers every case.

    VOLATILE  window volatility >= ratio x the baseline's, or annualised >= the ceiling
    TRENDING  otherwise, ADX >= its threshold and CHOP < its high threshold
    CHOPPY    otherwise (ADX below its threshold, or CHOP at or above its high threshold)
    UNKNOWN   too few candles for the indicators (confidence 0, with a reason)

Confidence is how far the indicators sit past the thresholds that decided the call,
each distance scaled by its span (0 at the threshold, 1 a full span beyond it); a call
that needed several conditions is only as confident as the weakest of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from regime_detection import indicators
from regime_detection.config import Settings
from regime_detection.indicators import FloatArray

Regime = Literal["TRENDING", "CHOPPY", "VOLATILE", "UNKNOWN"]
SECONDS_PER_YEAR = 365 * 24 * 3600  # crypto trades every day of the year


@dataclass(frozen=True, slots=True)
class Thresholds:
    adx_period: int = 14
    chop_period: int = 14
    adx_trend: float = 25.0
    chop_high: float = 61.8
    volatility_ratio: float = 1.5
    volatility_ceiling_annualized: float = 1.5
    adx_span: float = 15.0
    chop_span: float = 15.0
    volatility_span: float = 0.5

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        """The thresholds configured in `s`."""
        return cls(
            s.adx_period,
            s.chop_period,
            s.adx_trend_threshold,
            s.chop_high_threshold,
            s.volatility_ratio_threshold,
            s.volatility_ceiling_annualized,
            s.confidence_adx_span,
            s.confidence_chop_span,
            s.confidence_volatility_span,
        )

    def min_candles(self) -> int:
        """The fewest candles that give every indicator a value."""
        return max(2 * self.adx_period, self.chop_period + 1, 3)


@dataclass(frozen=True, slots=True)
class Indicators:
    adx: float
    choppiness: float
    volatility: float
    volatility_annualized: float
    baseline_volatility: float
    volatility_ratio: float | None  # None when the baseline is flat or no longer than the window


@dataclass(frozen=True, slots=True)
class Reading:
    regime: Regime
    confidence: float
    indicators: Indicators | None
    reason: str | None = None


def measure(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    *,
    periods: int,
    granularity: int,
    th: Thresholds,
) -> Indicators:
    """The indicators over the last `periods` candles; the baseline over all of them."""
    window = slice(max(close.size - periods, 0), close.size)
    h, lo, c = high[window], low[window], close[window]
    vol = indicators.volatility(c)
    baseline = indicators.volatility(close)
    ratio = vol / baseline if close.size > c.size and baseline > 0 else None
    return Indicators(
        adx=float(indicators.adx(h, lo, c, th.adx_period)[-1]),
        choppiness=float(indicators.choppiness(h, lo, c, th.chop_period)[-1]),
        volatility=vol,
        volatility_annualized=vol * math.sqrt(SECONDS_PER_YEAR / granularity),
        baseline_volatility=baseline,
        volatility_ratio=ratio,
    )


def _margin(distance: float, span: float) -> float:
    return float(np.clip(distance / span, 0.0, 1.0))


def decide(ind: Indicators, th: Thresholds) -> Reading:
    """Apply the rule (module docstring) to measured indicators."""
    # How far volatility is towards VOLATILE: >= 1 means a threshold is crossed.
    storm = ind.volatility_annualized / th.volatility_ceiling_annualized
    if ind.volatility_ratio is not None:
        storm = max(storm, ind.volatility_ratio / th.volatility_ratio)
    if storm >= 1.0:
        return Reading("VOLATILE", _margin(storm - 1.0, th.volatility_span), ind)
    calm = _margin(1.0 - storm, th.volatility_span)
    adx_above = ind.adx - th.adx_trend
    chop_below = th.chop_high - ind.choppiness
    if adx_above >= 0 and chop_below > 0:
        confidence = min(calm, _margin(adx_above, th.adx_span), _margin(chop_below, th.chop_span))
        return Reading("TRENDING", confidence, ind)
    # Either failed test makes it CHOPPY, so the stronger of the two decides.
    choppy = max(_margin(-adx_above, th.adx_span), _margin(-chop_below, th.chop_span))
    return Reading("CHOPPY", min(calm, choppy), ind)


def assess(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    *,
    periods: int,
    granularity: int,
    th: Thresholds,
) -> Reading:
    """The regime of the last `periods` candles (the rest is the volatility baseline)."""
    used = min(periods, close.size)
    if used < th.min_candles():
        reason = f"{used} candles in the window; the indicators need at least {th.min_candles()}"
        return Reading("UNKNOWN", 0.0, None, reason)
    ind = measure(high, low, close, periods=periods, granularity=granularity, th=th)
    return decide(ind, th)
