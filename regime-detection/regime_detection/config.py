"""Regime Detection settings: the window, the thresholds and the answer cache."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from shared.market.models import MAX_CANDLES
from shared.settings import MarketSettings

# The fewest candles a window may have (the API's `periods` and the settings alike).
MIN_WINDOW = 30


class Settings(MarketSettings):
    """Every knob of the classifier, from the environment (upper-cased field names)."""

    # Candles in the indicator window when the caller gives no `periods`. Measured on
    # ../shared/data: ADX(14) from the last 100 candles is within 0.34 points of the
    # long-history value at p95 (1.1 at worst); 60 candles leave it 5 points off at p95.
    default_periods: int = Field(default=100, ge=MIN_WINDOW, le=MAX_CANDLES)
    # The lookback: this many candles (window included), fetched with the window in one
    # call, so at most 300; the symbol's typical true range (the volatility baseline) is
    # measured over all of them.
    baseline_periods: int = Field(default=300, ge=MIN_WINDOW, le=MAX_CANDLES)
    # The reported ADX and CHOP (over the window); they no longer decide the call.
    adx_period: int = Field(default=14, ge=2, le=50)
    chop_period: int = Field(default=14, ge=2, le=50)

    # The rule looks at the newest candles only, on these windows (README: "Regime lag";
    # measured against the simulator's ground truth, p90 lag <= 16 candles at these).
    # VOLATILE: the mean true range of the last FAST_VOLATILITY_PERIODS candles at least
    # TRUE_RANGE_RATIO_THRESHOLD x the lookback's typical true range (its
    # TYPICAL_RANGE_QUANTILE quantile), or the std of their log returns, annualised
    # (sqrt(seconds per year / granularity), 365-day year), at or above the ceiling.
    fast_volatility_periods: int = Field(default=10, ge=2, le=100)
    typical_range_quantile: float = Field(default=0.5, gt=0, lt=1)
    true_range_ratio_threshold: float = Field(default=2.5, gt=1.0)
    volatility_ceiling_annualized: float = Field(default=1.5, gt=0)
    # TRENDING: otherwise, Kaufman's efficiency ratio over EFFICIENCY_PERIODS closes at
    # or above EFFICIENCY_THRESHOLD; CHOPPY below it.
    efficiency_periods: int = Field(default=14, ge=2, le=100)
    efficiency_threshold: float = Field(default=0.35, gt=0, lt=1)
    # Hysteresis: the answer changes only after CONFIRM_CANDLES candles in a row call the
    # new regime, replayed over the last REPLAY_CANDLES candles (so every replica and
    # every restart gives the same answer from the same candles).
    confirm_candles: int = Field(default=3, ge=1, le=20)
    replay_candles: int = Field(default=30, ge=1, le=200)

    # Confidence reaches 1 this far past the deciding threshold (0 at the threshold).
    confidence_efficiency_span: float = Field(default=0.3, gt=0)  # efficiency ratio
    confidence_volatility_span: float = Field(default=0.5, gt=0)  # fraction of a threshold

    # Answers are kept in-process until the next candle closes (same symbol, granularity
    # and periods); when the newest candle is late, only this long.
    answer_cache_size: int = Field(default=1024, ge=0)
    late_candle_retry_seconds: float = Field(default=2.0, ge=0)

    @model_validator(mode="after")
    def _replay_covers_a_confirmation(self) -> Self:
        if self.replay_candles < self.confirm_candles:
            raise ValueError("REPLAY_CANDLES must be at least CONFIRM_CANDLES")
        return self
