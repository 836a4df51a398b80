"""The gateway's API contract: what each endpoint answers, with examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.market.models import Granularity, Regime, SourceName


class PriceOut(BaseModel):
    """The last trade price of a symbol."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTC-USD",
                    "price": 45000.5,
                    "timestamp": "2025-10-03T10:30:00.123456Z",
                    "source": "coinbase",
                }
            ]
        }
    )

    symbol: str = Field(description="Coinbase product id")
    price: float = Field(description="Last trade price, in the quote currency")
    timestamp: datetime = Field(description="When that trade happened (ISO-8601 UTC)")
    source: SourceName = Field(description="Where the price came from")


class ProductOut(BaseModel):
    symbol: str = Field(description="Coinbase product id, BASE-QUOTE")
    base: str
    quote: str
    listed: bool = Field(description="The source lists it for trading now")


class SymbolsOut(BaseModel):
    """The products the market source knows."""

    source: SourceName
    symbols: list[ProductOut]


class PriceProblem(BaseModel):
    """Why one symbol of a batch has no price."""

    status: int = Field(description="The status its single read would answer (404, 503)")
    detail: str


class PricesOut(BaseModel):
    """Several prices at once; a symbol that could not be priced is in `errors` instead."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prices": {
                        "BTC-USD": {
                            "symbol": "BTC-USD",
                            "price": 45000.5,
                            "timestamp": "2025-10-03T10:30:00.123456Z",
                            "source": "coinbase",
                        }
                    },
                    "errors": {
                        "NOPE-USD": {
                            "status": 404,
                            "detail": "coinbase does not list the product NOPE-USD",
                        }
                    },
                }
            ]
        }
    )

    prices: dict[str, PriceOut]
    errors: dict[str, PriceProblem]


class CandleOut(BaseModel):
    """One closed candle; `timestamp` is when its interval opened."""

    timestamp: datetime = Field(examples=["2025-10-03T10:29:00Z"])
    open: float = Field(examples=[44950.0])
    high: float = Field(examples=[45100.0])
    low: float = Field(examples=[44900.0])
    close: float = Field(examples=[45000.0])
    volume: float = Field(description="Traded volume, in the base currency", examples=[15.5])


class OHLCVOut(BaseModel):
    """Closed candles, oldest first; an interval without trades has no candle (a gap)."""

    symbol: str = Field(examples=["BTC-USD"])
    granularity: Granularity
    source: SourceName = Field(examples=["coinbase"])
    data: list[CandleOut]


class OHLCVManyOut(BaseModel):
    """Several symbols' candles at once; a symbol that could not be read is in `errors`."""

    series: dict[str, OHLCVOut]
    errors: dict[str, PriceProblem]


class RegimeOut(BaseModel):
    """The simulator's true regime for the candle containing `at`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTC-USD",
                    "granularity": 60,
                    "at": "2025-10-03T10:30:15Z",
                    "candle_open": "2025-10-03T10:30:00Z",
                    "regime": "TRENDING",
                }
            ]
        }
    )

    symbol: str
    granularity: Granularity
    at: datetime = Field(description="The instant asked about")
    candle_open: datetime = Field(description="Open time of the candle containing `at`")
    regime: Regime = Field(description="The simulator's truth: never UNKNOWN")


def problem(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for an error (documented as problem+json by `shared.openapi`)."""
    return {"description": description}


PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: problem("Unknown symbol (the exchange does not list it)"),
    422: problem("Invalid symbol, periods or granularity; `errors` names the fields"),
    503: problem("No market data could be had from the source"),
}
