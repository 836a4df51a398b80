"""The API contract of Regime Detection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.market.models import SourceName, Via


class IndicatorValues(BaseModel):
    """The indicators over the window (the baseline over the whole lookback)."""

    adx: float | None = Field(description="Wilder's ADX(14) at the newest candle, 0-100")
    choppiness: float | None = Field(description="Choppiness Index(14) at the newest candle")
    volatility: float | None = Field(
        description="Sample std of close-to-close log returns over the window, per candle"
    )
    volatility_annualized: float | None = Field(
        description="`volatility` x sqrt(candles per 365-day year)"
    )
    baseline_volatility: float | None = Field(
        description="The same per-candle figure over the whole baseline lookback"
    )
    volatility_ratio: float | None = Field(
        description="volatility / baseline_volatility (null when the baseline adds nothing)"
    )


class AppliedThresholds(BaseModel):
    """The thresholds the call was made with (settings)."""

    adx_trend: float
    chop_high: float
    volatility_ratio: float
    volatility_ceiling_annualized: float


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
                        "baseline_volatility": 0.00072,
                        "volatility_ratio": 0.85,
                    },
                    "timestamp": "2024-05-01T12:00:03.120000Z",
                    "as_of": "2024-05-01T12:00:00Z",
                    "granularity": 60,
                    "periods": 100,
                    "candles": 100,
                    "baseline_candles": 300,
                    "thresholds": {
                        "adx_trend": 25.0,
                        "chop_high": 61.8,
                        "volatility_ratio": 1.5,
                        "volatility_ceiling_annualized": 1.5,
                    },
                    "source": "coinbase",
                    "via": "gateway",
                    "reason": None,
                }
            ]
        }
    )

    symbol: str
    regime: Literal["TRENDING", "CHOPPY", "VOLATILE", "UNKNOWN"]
    confidence: float = Field(ge=0, le=1, description="0 at the deciding thresholds, up to 1")
    indicators: IndicatorValues
    timestamp: str = Field(description="When this answer was computed (UTC)")
    as_of: str | None = Field(description="Close time of the newest candle used (UTC)")
    granularity: int = Field(description="Candle width in seconds")
    periods: int = Field(description="Candles asked for in the indicator window")
    candles: int = Field(description="Candles actually in the window (gaps are not filled)")
    baseline_candles: int = Field(description="Candles in the volatility baseline lookback")
    thresholds: AppliedThresholds
    source: SourceName = Field(description="Where the candles come from")
    via: Via = Field(description="`gateway`, or `direct` when the gateway was down")
    reason: str | None = Field(default=None, description="Why the regime is UNKNOWN")
