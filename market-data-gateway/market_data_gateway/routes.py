"""The gateway's endpoints: thin handlers over `GatewayService`, answering cached bytes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from market_data_gateway.schemas import (
    PROBLEMS,
    CandleWidth,
    OHLCVOut,
    PriceOut,
    RegimeOut,
    problem,
)
from market_data_gateway.service import GatewayService
from shared.auth import ReaderDep
from shared.market.models import MAX_CANDLES, SymbolPath

JSON = "application/json"

router = APIRouter(prefix="/api/v1", tags=["market data"])


async def get_service(request: Request) -> GatewayService:
    # async: a sync dependency would be run in the thread pool, on every request.
    service: GatewayService = request.app.state.service
    return service


ServiceDep = Annotated[GatewayService, Depends(get_service)]
GranularityQuery = Annotated[
    CandleWidth, Query(description="Candle width in seconds (Coinbase's widths)")
]


@router.get("/price/{symbol}", response_model=PriceOut, responses=PROBLEMS)
async def price(symbol: SymbolPath, request: Request, caller: ReaderDep) -> Response:
    """The latest trade price of a symbol (cached for PRICE_TTL_SECONDS)."""
    # The hot path: the service from the app's state, not through `Depends` (~14 us).
    service: GatewayService = request.app.state.service
    return Response(await service.price(symbol), media_type=JSON)


@router.get("/ohlcv/{symbol}", response_model=OHLCVOut, responses=PROBLEMS)
async def ohlcv(
    symbol: SymbolPath,
    service: ServiceDep,
    caller: ReaderDep,
    periods: Annotated[
        int, Query(ge=1, le=MAX_CANDLES, description="How many closed candles, at most")
    ] = 60,
    granularity: GranularityQuery = CandleWidth.ONE_MINUTE,
) -> Response:
    """The last `periods` closed candles, oldest first; gaps (no trades) are not filled in."""
    return Response(await service.ohlcv(symbol, int(granularity), periods), media_type=JSON)


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
    service: ServiceDep,
    caller: ReaderDep,
    granularity: GranularityQuery = CandleWidth.ONE_MINUTE,
    at: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Epoch seconds or ISO-8601 time (default: now)",
            examples=["1759487415", "2025-10-03T10:30:15Z"],
        ),
    ] = None,
) -> RegimeOut:
    """The simulator's true regime of a candle (404 unless the source is `simulated`)."""
    return RegimeOut.model_validate(service.true_regime(symbol, int(granularity), at))
