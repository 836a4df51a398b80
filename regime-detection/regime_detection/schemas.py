"""The API contract of Regime Detection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.market.models import Granularity, Regime, SourceName, Via


class IndicatorValues(BaseModel):
    """The window's indicators (reported) and the short-horizon figures the rule decides on."""

    adx: float | None = Field(
        description="Wilder's ADX (ADX_PERIOD) over the window at the newest candle, 0-100 "
        "(TA-Lib's)"
    )
    choppiness: float | None = Field(
        description="Choppiness Index (CHOP_PERIOD) at the newest candle"
    )
    volatility: float | None = Field(
        description="Sample std of close-to-close log returns over the window, per candle"
    )
    volatility_annualized: float | None = Field(
        description="`volatility` x sqrt(candles per 365-day year)"
    )
    fast_volatility_annualized: float | None = Field(
        description="Std of the last FAST_VOLATILITY_PERIODS log returns, annualised"
    )
    true_range_ratio: float | None = Field(
        description=(
            "Mean true range of the last FAST_VOLATILITY_PERIODS candles over the lookback's "
            "typical true range (its TYPICAL_RANGE_QUANTILE quantile); null for a flat lookback"
        )
    )
    efficiency_ratio: float | None = Field(
        description="Kaufman's efficiency ratio over the last EFFICIENCY_PERIODS closes, 0-1"
    )


class AppliedThresholds(BaseModel):
    """The thresholds the call was made with (settings)."""

    true_range_ratio: float
    volatility_ceiling_annualized: float
    efficiency_ratio: float
    confirm_candles: int


class RegimeResponse(BaseModel):
    """The market regime of a symbol, with the evidence for it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTC-USD",
                    "regime": "TRENDING",
                    "confidence": 0.72,
                    "indicators": {
                        "adx": 38.2,
                        "choppiness": 41.5,
                        "volatility": 0.00061,
                        "volatility_annualized": 0.44,
                        "fast_volatility_annualized": 0.41,
                        "true_range_ratio": 1.3,
                        "efficiency_ratio": 0.62,
                    },
                    "timestamp": "2024-05-01T12:00:03.120000Z",
                    "as_of": "2024-05-01T12:00:00Z",
                    "granularity": 60,
                    "periods": 100,
                    "candles": 100,
                    "baseline_candles": 300,
                    "thresholds": {
                        "true_range_ratio": 2.5,
                        "volatility_ceiling_annualized": 1.5,
                        "efficiency_ratio": 0.35,
                        "confirm_candles": 3,
                    },
                    "source": "coinbase",
                    "via": "gateway",
                    "reason": None,
                }
            ]
        }
    )

    symbol: str
    regime: Regime
    confidence: float = Field(ge=0, le=1, description="0 at the deciding thresholds, up to 1")
    indicators: IndicatorValues
    timestamp: str = Field(description="When this answer was computed (UTC)")
    as_of: str | None = Field(description="Close time of the newest candle used (UTC)")
    granularity: Granularity
    periods: int = Field(description="Candles asked for in the indicator window")
    candles: int = Field(description="Candles actually in the window (gaps are not filled)")
    baseline_candles: int = Field(description="Candles in the lookback (typical true range)")
    thresholds: AppliedThresholds
    source: SourceName = Field(description="Where the candles come from")
    via: Via = Field(description="`gateway`, or `direct` when the gateway was down")
    reason: str | None = Field(default=None, description="Why the regime is UNKNOWN")
