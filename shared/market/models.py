"""What the market is read as: quotes and closed OHLCV candles, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import StringConstraints

# Coinbase product ids: BASE-QUOTE, upper case (BTC-USD, ETH-BTC, USDT-USD, 1INCH-USD).
SYMBOL_PATTERN = r"^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$"
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
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


def utc_iso(ts: float | datetime) -> str:
    """ISO-8601 UTC with a `Z`, the one timestamp format of every API."""
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
