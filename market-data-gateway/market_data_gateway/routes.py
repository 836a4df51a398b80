"""The gateway's endpoints: thin handlers over `GatewayService`, answering cached bytes."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query

from market_data_gateway.deps import MarketDep
from market_data_gateway.schemas import (
    PROBLEMS,
    OHLCVManyOut,
    OHLCVOut,
    PriceOut,
    PricesOut,
    RegimeOut,
    SymbolsOut,
    problem,
)
from shared.auth import ReaderDep
from shared.bodies import JsonRoute
from shared.errors import InvalidRequestError
from shared.market.models import (
    MAX_BATCH_SYMBOLS,
    MAX_CANDLES,
    SYMBOL_PATTERN,
    Granularity,
    GranularityQuery,
    SymbolPath,
)
from shared.responses import JSONBytes

router = APIRouter(prefix="/api/v1", tags=["market data"], route_class=JsonRoute)


@router.get("/price/{symbol}", response_model=PriceOut, responses=PROBLEMS)
async def price(symbol: SymbolPath, market: MarketDep, caller: ReaderDep) -> JSONBytes:
    """The latest trade price of a symbol (cached for PRICE_TTL_SECONDS)."""
    return JSONBytes(await market.price(symbol))


@router.get(
    "/symbols",
    response_model=SymbolsOut,
    responses={503: PROBLEMS[503]},
)
async def symbols(market: MarketDep, caller: ReaderDep) -> JSONBytes:
    """The products the source lists: Coinbase's `/products` when live (`listed` when
    online and trading), a fixed list on the simulator (see the README)."""
    return JSONBytes(await market.symbols())


_SYMBOL = re.compile(SYMBOL_PATTERN)


def parse_symbols(text: str) -> list[str]:
    """`A,B,C` as a list of product ids, or a 422 naming the bad ones."""
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in symbols if not _SYMBOL.fullmatch(s)]
    message = None
    if bad:
        message = f"not BASE-QUOTE product ids: {', '.join(bad[:10])}"
    elif not symbols:
        message = "name at least one symbol"
    elif len(set(symbols)) > MAX_BATCH_SYMBOLS:
        message = f"at most {MAX_BATCH_SYMBOLS} symbols per request"
    if message is not None:
        errors = [
            {"field": "symbols", "location": "query", "message": message, "type": "value_error"}
        ]
        raise InvalidRequestError(f"Invalid request: symbols {message}", extra={"errors": errors})
    return symbols


SymbolsQuery = Annotated[
    str,
    Query(
        max_length=2000,
        description=f"Comma-separated product ids, at most {MAX_BATCH_SYMBOLS}",
        examples=["BTC-USD,ETH-USD"],
    ),
]
PeriodsQuery = Annotated[
    int, Query(ge=1, le=MAX_CANDLES, description="How many closed candles, at most")
]


@router.get("/prices", response_model=PricesOut, responses=PROBLEMS)
async def prices(symbols: SymbolsQuery, market: MarketDep, caller: ReaderDep) -> JSONBytes:
    """The latest prices of several symbols, each cached like the single price."""
    return JSONBytes(await market.prices(parse_symbols(symbols)))


@router.get("/ohlcv", response_model=OHLCVManyOut, responses=PROBLEMS)
async def ohlcv_many(
    symbols: SymbolsQuery,
    market: MarketDep,
    caller: ReaderDep,
    periods: PeriodsQuery = 60,
    granularity: GranularityQuery = Granularity.ONE_MINUTE,
) -> JSONBytes:
    """Several symbols' last `periods` closed candles, each cached like the single read."""
    return JSONBytes(await market.ohlcv_many(parse_symbols(symbols), int(granularity), periods))


@router.get("/ohlcv/{symbol}", response_model=OHLCVOut, responses=PROBLEMS)
async def ohlcv(
    symbol: SymbolPath,
    market: MarketDep,
    caller: ReaderDep,
    periods: PeriodsQuery = 60,
    granularity: GranularityQuery = Granularity.ONE_MINUTE,
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
    caller: ReaderDep,
    granularity: GranularityQuery = Granularity.ONE_MINUTE,
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
    return RegimeOut.model_validate(market.true_regime(symbol, int(granularity), at))
