"""Risk Management settings: every sizing limit, read from the environment (upper-cased names)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from risk_management.limits import Limits
from shared.market.models import Granularity, Regime
from shared.settings import MarketSettings


class Settings(MarketSettings):
    """Sizing limits and where volatility comes from; defaults are the documented ones."""

    # The largest position in one symbol, as a share of equity, in a TRENDING regime.
    max_position_share: float = Field(default=0.25, gt=0, le=1)
    # Multiply both the order and the position cap; UNKNOWN (regime service down or
    # unsure) must be the most conservative.
    regime_multiplier_trending: float = Field(default=1.0, ge=0, le=1)
    regime_multiplier_choppy: float = Field(default=0.5, ge=0, le=1)
    regime_multiplier_volatile: float = Field(default=0.25, ge=0, le=1)
    regime_multiplier_unknown: float = Field(default=0.1, ge=0, le=1)
    # Parametric one-day VaR of the post-trade portfolio, as a share of equity.
    var_limit_share: float = Field(default=0.05, gt=0, le=1)
    var_confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # Cash kept back per dollar bought for the execution fee (Coinbase's 0.6% taker tier).
    buy_fee_rate: float = Field(default=0.006, ge=0, lt=0.1)
    min_order_usd: float = Field(default=10.0, gt=0)
    # No single order (buy or sell) above this notional, whatever the other limits allow.
    max_order_usd: float = Field(default=100_000.0, gt=0)

    # Volatility: the regime service's per-candle volatility at this granularity, or the
    # same computed from this many candles when it is down; both scaled to one day.
    volatility_granularity: Granularity = Granularity.ONE_MINUTE
    volatility_periods: int = Field(default=100, ge=3, le=300)
    # Used when no candles can be had at all (said in `reason`): deliberately high.
    default_daily_volatility: float = Field(default=0.10, gt=0, le=1)
    # A quiet window can read as zero volatility; no asset is treated as calmer than this.
    min_daily_volatility: float = Field(default=0.002, ge=0, le=1)
    # Budget for fetching price, regime and volatilities: below the caller's 5 s timeout,
    # so a slow upstream still yields an answer (refusal or UNKNOWN sizing), not a timeout.
    decision_timeout_seconds: float = Field(default=4.0, gt=0)

    @model_validator(mode="after")
    def _unknown_is_most_conservative(self) -> Self:
        others = (
            self.regime_multiplier_trending,
            self.regime_multiplier_choppy,
            self.regime_multiplier_volatile,
        )
        if self.regime_multiplier_unknown > min(others):
            raise ValueError("REGIME_MULTIPLIER_UNKNOWN must not exceed any other multiplier")
        return self

    def limits(self) -> Limits:
        """The sizing limits these settings describe."""
        return Limits(
            max_position_share=self.max_position_share,
            regime_multipliers={
                Regime.TRENDING: self.regime_multiplier_trending,
                Regime.CHOPPY: self.regime_multiplier_choppy,
                Regime.VOLATILE: self.regime_multiplier_volatile,
                Regime.UNKNOWN: self.regime_multiplier_unknown,
            },
            var_limit_share=self.var_limit_share,
            var_confidence=self.var_confidence,
            buy_fee_rate=self.buy_fee_rate,
            min_order_usd=self.min_order_usd,
            max_order_usd=self.max_order_usd,
        )
