"""`MarketDataClient`: the gateway first, the market source directly when it is down."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.client import ServiceClient
from shared.errors import ServiceUnavailableError, UpstreamClientError
from shared.market.models import Candle, CandleSeries, Product, Quote
from shared.market.source import MarketSource, UnknownSymbolError

log = logging.getLogger(__name__)


def _epoch(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp())


class MarketDataClient:
    """Reads prices and candles through the gateway, falling back to `direct`.

    Only an unavailable gateway (unreachable, 5xx, breaker open) triggers the fallback;
    an unknown symbol is an answer, not an outage, and is raised as `UnknownSymbolError`.
    """

    def __init__(self, gateway: ServiceClient, direct: MarketSource) -> None:
        self.gateway = gateway
        self.direct = direct

    async def price(self, symbol: str) -> Quote:
        """The latest price of `symbol`."""
        try:
            body = await self._get(f"/api/v1/price/{symbol}", None)
        except ServiceUnavailableError as exc:
            log.warning(
                "gateway unavailable (%s); reading the price from %s", exc, self.direct.name
            )
            return await self.direct.price(symbol)
        return Quote(
            symbol=body["symbol"],
            price=float(body["price"]),
            time=datetime.fromisoformat(body["timestamp"]),
            source=body["source"],
            via="gateway",
        )

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        """The last `periods` closed candles of `symbol`, oldest first."""
        params = {"periods": periods, "granularity": granularity}
        try:
            body = await self._get(f"/api/v1/ohlcv/{symbol}", params)
        except ServiceUnavailableError as exc:
            log.warning("gateway unavailable (%s); reading candles from %s", exc, self.direct.name)
            return await self.direct.candles(symbol, granularity, periods)
        candles = [
            Candle(_epoch(c["timestamp"]), c["open"], c["high"], c["low"], c["close"], c["volume"])
            for c in body["data"]
        ]
        return CandleSeries(symbol, granularity, body["source"], candles, via="gateway")

    async def products(self) -> list[Product]:
        """The source's products (`GET /api/v1/symbols` of the gateway)."""
        try:
            body = await self._get("/api/v1/symbols", None)
        except ServiceUnavailableError as exc:
            log.warning("gateway unavailable (%s); listing products of %s", exc, self.direct.name)
            return await self.direct.products()
        return [
            Product(p["symbol"], p["base"], p["quote"], listed=bool(p["listed"]))
            for p in body["symbols"]
        ]

    async def _get(self, path: str, params: dict[str, Any] | None) -> Any:
        try:
            return await self.gateway.get_json(path, params=params)
        except UpstreamClientError as exc:
            if exc.status_code == 404:
                raise UnknownSymbolError(exc.detail) from exc
            raise
