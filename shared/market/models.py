"""What the market is read as: quotes and closed OHLCV candles, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, StringConstraints

# Coinbase product ids: BASE-QUOTE, upper case (BTC-USD, ETH-BTC, USDT-USD, 1INCH-USD).
SYMBOL_PATTERN = r"^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$"
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
# Amounts, cash and equity are USD; a dollar stablecoin quote is taken at par.
USD_QUOTES = frozenset({"USD", "USDC", "USDT"})


def _usd_quoted(symbol: str) -> str:
    if symbol.rsplit("-", 1)[1] not in USD_QUOTES:
        raise ValueError("must be quoted in USD (or USDC/USDT): amounts and cash are dollars")
    return symbol


# What can be traded: amounts are dollars, so only dollar-quoted products.
UsdSymbol = Annotated[Symbol, AfterValidator(_usd_quoted)]
SymbolPath = Annotated[
    str,
    Path(
        pattern=SYMBOL_PATTERN,
        description="Coinbase product id, BASE-QUOTE upper case",
        examples=["BTC-USD"],
    ),
]


class Granularity(IntEnum):
    """A candle width in seconds, one of Coinbase's."""

    ONE_MINUTE = 60
    FIVE_MINUTES = 300
    FIFTEEN_MINUTES = 900
    ONE_HOUR = 3600
    SIX_HOURS = 21600
    ONE_DAY = 86400


GRANULARITIES: tuple[int, ...] = tuple(int(g) for g in Granularity)
GranularityQuery = Annotated[
    Granularity, Query(description="Candle width in seconds (Coinbase's widths)")
]
MAX_CANDLES = 300
# The gateway's batch reads (`/prices`, `/ohlcv`) take at most this many symbols per
# request; `MarketDataClient` splits a longer list into batches of this size.
MAX_BATCH_SYMBOLS = 100


class Regime(StrEnum):
    """A market regime, as Regime Detection calls it and Risk sizes by."""

    TRENDING = "TRENDING"
    CHOPPY = "CHOPPY"
    VOLATILE = "VOLATILE"
    UNKNOWN = "UNKNOWN"  # too few candles to tell, or no answer at all


SourceName = Literal["coinbase", "simulated"]
# How a reader got the data: through the gateway, or from the source itself (fallback).
Via = Literal["gateway", "direct"]


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed candle; `time` is the epoch second the interval opens."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class CandleSeries:
    """Closed candles of one symbol, oldest first, gaps left as gaps."""

    symbol: str
    granularity: int
    source: SourceName
    candles: list[Candle]
    via: Via = "direct"


@dataclass(frozen=True, slots=True)
class Quote:
    """The last trade price of a symbol."""

    symbol: str
    price: float
    time: datetime
    source: SourceName
    via: Via = "direct"


@dataclass(frozen=True, slots=True)
class Product:
    """A product the source knows; `listed` when it trades there now."""

    symbol: str
    base: str
    quote: str
    listed: bool


def utc_iso(ts: float | datetime) -> str:
    """ISO-8601 UTC with a `Z`, the one timestamp format of every API."""
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
