"""What the market is read as: quotes and closed OHLCV candles, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path
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

# Coinbase's candle widths in seconds.
GRANULARITIES: tuple[int, ...] = (60, 300, 900, 3600, 21600, 86400)
Granularity = Literal[60, 300, 900, 3600, 21600, 86400]
MAX_CANDLES = 300

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
