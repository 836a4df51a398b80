"""The gateway's endpoints: thin handlers over `GatewayService`, answering cached bytes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from market_data_gateway.deps import MarketDep
from market_data_gateway.schemas import (
    PROBLEMS,
    CandleWidth,
    OHLCVOut,
    PriceOut,
    RegimeOut,
    problem,
)
from shared.bodies import JsonRoute
from shared.market.models import MAX_CANDLES, SymbolPath
from shared.responses import JSONBytes

router = APIRouter(prefix="/api/v1", tags=["market data"], route_class=JsonRoute)


GranularityQuery = Annotated[
    CandleWidth, Query(description="Candle width in seconds (Coinbase's widths)")
]


@router.get("/price/{symbol}", response_model=PriceOut, responses=PROBLEMS)
async def price(symbol: SymbolPath, market: MarketDep) -> JSONBytes:
    """The latest trade price of a symbol (cached for PRICE_TTL_SECONDS)."""
    return JSONBytes(await market.price(symbol))


@router.get("/ohlcv/{symbol}", response_model=OHLCVOut, responses=PROBLEMS)
async def ohlcv(
    symbol: SymbolPath,
    market: MarketDep,
    periods: Annotated[
        int, Query(ge=1, le=MAX_CANDLES, description="How many closed candles, at most")
    ] = 60,
    granularity: GranularityQuery = CandleWidth.ONE_MINUTE,
) -> JSONBytes:
    """The last `periods` closed candles, oldest first; gaps (no trades) are not filled in."""
    return JSONBytes(await market.ohlcv(symbol, int(granularity), periods))


@router.get(
    "/simulation/regime/{symbol}",
    response_model=RegimeOut,
    responses={
        404: problem("The gateway does not run on the simulated source"),
        422: PROBLEMS[422],
    },
    tags=["simulation"],
)
async def true_regime(
    symbol: SymbolPath,
    market: MarketDep,
    granularity: GranularityQuery = CandleWidth.ONE_MINUTE,
    at: Annotated[
        str | None,
        Query(
            description="Epoch seconds or ISO-8601 time (default: now)",
            examples=["1759487415", "2025-10-03T10:30:15Z"],
        ),
    ] = None,
) -> RegimeOut:
    """The simulator's true regime of a candle (404 unless the source is `simulated`)."""
    return RegimeOut.model_validate(market.true_regime(symbol, int(granularity), at))
