"""The interface every market source (Coinbase, the simulator) implements."""

from __future__ import annotations

from typing import Protocol

from shared.errors import NotFoundError, ServiceUnavailableError
from shared.market.models import CandleSeries, Product, Quote, SourceName


class UnknownSymbolError(NotFoundError):
    """The exchange does not list this product."""

    title = "Unknown Symbol"


class MarketUnavailableError(ServiceUnavailableError):
    """No market data could be had from the source."""


class MarketSource(Protocol):
    """A place prices and candles come from."""

    # Read-only, so a source may declare a narrower literal (`Literal["simulated"]`).
    @property
    def name(self) -> SourceName:
        """Which source this is; every answer is labelled with it."""
        ...

    async def price(self, symbol: str) -> Quote:
        """The latest price; raises UnknownSymbolError or MarketUnavailableError."""
        ...

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        """The last `periods` closed candles (fewer where the exchange has gaps), oldest first."""
        ...

    async def products(self) -> list[Product]:
        """The products the source knows, each saying whether it is listed for trading."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
