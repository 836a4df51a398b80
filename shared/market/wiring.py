"""What every service that reads the market opens in its lifespan, in one place.

The process's transport (`shared.transport`), the direct market source (chosen once, `auto` probing
Coinbase), a `ServiceClient` for the gateway and the `MarketDataClient` over both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from shared.client import ServiceClient
from shared.market.client import MarketDataClient
from shared.market.factory import SourceChoice, choose_source
from shared.market.source import MarketSource
from shared.settings import MarketSettings
from shared.transport import Transport, opened


@dataclass(frozen=True)
class MarketWiring:
    """The long-lived market clients of one process."""

    transport: Transport
    choice: SourceChoice
    gateway: ServiceClient
    market: MarketDataClient

    def client(self, service_name: str, settings: MarketSettings) -> ServiceClient:
        """A client for another service over the same transport (one pool per process)."""
        return ServiceClient.from_settings(service_name, settings, transport=self.transport)


@asynccontextmanager
async def open_market(
    settings: MarketSettings,
    *,
    transport: Transport | None = None,
    market_source: MarketSource | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[MarketWiring]:
    """Open the market clients for a lifespan and close them after it.

    `transport` and `market_source` are the seams tests use (an in-process app, a source
    that fails on demand); an injected source is reported as `requested: "injected"`. An
    injected transport stays its owner's to close; the aiohttp pool made here is closed here.
    """
    async with opened(transport) as used:
        if market_source is not None:
            choice = SourceChoice(market_source, "injected")
        else:
            choice = await choose_source(settings, used, clock=clock, sleep=sleep)
        try:
            gateway = ServiceClient.from_settings("market_data", settings, transport=used)
            yield MarketWiring(used, choice, gateway, MarketDataClient(gateway, choice.source))
        finally:
            await choice.source.aclose()
