"""What every service that reads the market opens in its lifespan, in one place.

The process's pooled HTTP client, the direct market source (chosen once, `auto` probing
Coinbase), a `ServiceClient` for the gateway and the `MarketDataClient` over both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from shared.client import ServiceClient
from shared.market.client import MarketDataClient
from shared.market.factory import SourceChoice, choose_source
from shared.market.source import MarketSource
from shared.settings import MarketSettings
from shared.transport import make_http_client


@dataclass(frozen=True)
class MarketWiring:
    """The long-lived market clients of one process."""

    http: httpx.AsyncClient
    choice: SourceChoice
    gateway: ServiceClient
    market: MarketDataClient

    def client(self, service_name: str, settings: MarketSettings) -> ServiceClient:
        """A client for another service on the same pooled connection."""
        return ServiceClient.from_settings(service_name, settings, http=self.http)


@asynccontextmanager
async def open_market(
    settings: MarketSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    market_source: MarketSource | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[MarketWiring]:
    """Open the market clients for a lifespan and close them after it.

    `transport` and `market_source` are the seams tests use (an in-process app, a source
    that fails on demand); an injected source is reported as `requested: "injected"`.
    """
    http = make_http_client(transport, timeout=settings.service_timeout_seconds)
    try:
        if market_source is not None:
            choice = SourceChoice(market_source, "injected")
        else:
            choice = await choose_source(settings, http, clock=clock, sleep=sleep)
        try:
            gateway = ServiceClient.from_settings("market_data", settings, http=http)
            yield MarketWiring(http, choice, gateway, MarketDataClient(gateway, choice.source))
        finally:
            await choice.source.aclose()
    finally:
        await http.aclose()
