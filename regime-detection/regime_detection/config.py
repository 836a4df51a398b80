"""Regime Detection settings: the window, the thresholds and the answer cache."""

from __future__ import annotations

from pydantic import Field

from shared.settings import MarketSettings


class Settings(MarketSettings):
    """Every knob of the classifier, from the environment (upper-cased field names)."""

    # Candles in the indicator window when the caller gives no `periods`. Measured on
    # ../shared/data: ADX(14) from the last 100 candles is within 0.34 points of the
    # long-history value at p95 (1.1 at worst); 60 candles leave it 5 points off at p95.
    default_periods: int = Field(default=100, ge=30, le=300)
    # The symbol's own volatility baseline: this many candles (window included), fetched
    # with the window in one call, so at most 300.
    baseline_periods: int = Field(default=300, ge=30, le=300)
    adx_period: int = Field(default=14, ge=2, le=50)
    chop_period: int = Field(default=14, ge=2, le=50)

    # VOLATILE: window volatility at least this many times the baseline's ...
    volatility_ratio_threshold: float = Field(default=1.5, gt=1.0)
    # ... or annualised (sqrt(seconds per year / granularity), 365-day year) above this.
    volatility_ceiling_annualized: float = Field(default=1.5, gt=0)
    # TRENDING: ADX at or above this and CHOP below the next; CHOPPY otherwise.
    adx_trend_threshold: float = Field(default=25.0, gt=0, lt=100)
    chop_high_threshold: float = Field(default=61.8, gt=0, lt=100)

    # Confidence reaches 1 this far past the deciding threshold (0 at the threshold).
    confidence_adx_span: float = Field(default=15.0, gt=0)  # ADX points
    confidence_chop_span: float = Field(default=15.0, gt=0)  # CHOP points
    confidence_volatility_span: float = Field(default=0.5, gt=0)  # fraction of a threshold

    # Answers are kept in-process until the next candle closes (same symbol, granularity
    # and periods); when the newest candle is late, only this long.
    answer_cache_size: int = Field(default=1024, ge=0)
    late_candle_retry_seconds: float = Field(default=2.0, ge=0)
