"""`MarketDataClient`: the gateway first, the market source directly when it is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from shared.client import ServiceClient
from shared.errors import DomainError, ServiceUnavailableError, UpstreamClientError
from shared.market.models import MAX_BATCH_SYMBOLS, Candle, CandleSeries, Product, Quote
from shared.market.source import MarketSource, MarketUnavailableError, UnknownSymbolError

log = logging.getLogger(__name__)
T = TypeVar("T")


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
        return _series(body)

    async def prices(self, symbols: Sequence[str]) -> dict[str, Quote | DomainError]:
        """The latest price of each of `symbols`, in one gateway call per
        `MAX_BATCH_SYMBOLS`; a symbol that could not be priced maps to its error
        (UnknownSymbolError, MarketUnavailableError)."""
        return await _batched(symbols, self._prices)

    async def _prices(self, symbols: Sequence[str]) -> dict[str, Quote | DomainError]:
        try:
            body = await self._get("/api/v1/prices", {"symbols": ",".join(symbols)})
        except ServiceUnavailableError as exc:
            log.warning(
                "gateway unavailable (%s); reading %d prices from %s",
                exc,
                len(symbols),
                self.direct.name,
            )
            return await _each(symbols, self.direct.price)
        found: dict[str, Quote | DomainError] = {
            s: Quote(
                symbol=q["symbol"],
                price=float(q["price"]),
                time=datetime.fromisoformat(q["timestamp"]),
                source=q["source"],
                via="gateway",
            )
            for s, q in body["prices"].items()
        }
        return found | _errors(body)

    async def candles_many(
        self, symbols: Sequence[str], granularity: int, periods: int
    ) -> dict[str, CandleSeries | DomainError]:
        """The last `periods` closed candles of each of `symbols`, in one gateway call per
        `MAX_BATCH_SYMBOLS`."""

        async def read(batch: Sequence[str]) -> dict[str, CandleSeries | DomainError]:
            return await self._candles_many(batch, granularity, periods)

        return await _batched(symbols, read)

    async def _candles_many(
        self, symbols: Sequence[str], granularity: int, periods: int
    ) -> dict[str, CandleSeries | DomainError]:
        params = {"symbols": ",".join(symbols), "periods": periods, "granularity": granularity}
        try:
            body = await self._get("/api/v1/ohlcv", params)
        except ServiceUnavailableError as exc:
            log.warning("gateway unavailable (%s); reading candles from %s", exc, self.direct.name)
            return await _each(symbols, lambda s: self.direct.candles(s, granularity, periods))
        found: dict[str, CandleSeries | DomainError] = {
            s: _series(series) for s, series in body["series"].items()
        }
        return found | _errors(body)

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


async def _batched(
    symbols: Sequence[str], read: Callable[[Sequence[str]], Awaitable[dict[str, T]]]
) -> dict[str, T]:
    """`read` over `symbols` (duplicates dropped) in batches the gateway takes, concurrently."""
    unique = list(dict.fromkeys(symbols))
    if len(unique) <= MAX_BATCH_SYMBOLS:
        return await read(unique) if unique else {}
    batches = [unique[i : i + MAX_BATCH_SYMBOLS] for i in range(0, len(unique), MAX_BATCH_SYMBOLS)]
    merged: dict[str, T] = {}
    for found in await asyncio.gather(*(read(batch) for batch in batches)):
        merged |= found
    return merged


def _series(body: dict[str, Any]) -> CandleSeries:
    candles = [
        Candle(_epoch(c["timestamp"]), c["open"], c["high"], c["low"], c["close"], c["volume"])
        for c in body["data"]
    ]
    return CandleSeries(body["symbol"], body["granularity"], body["source"], candles, via="gateway")


def _errors(body: dict[str, Any]) -> dict[str, DomainError]:
    """A batch answer's per-symbol errors as the errors a single read would raise."""
    return {
        s: UnknownSymbolError(e["detail"])
        if e["status"] == 404
        else MarketUnavailableError("market_data", e["detail"])
        for s, e in body["errors"].items()
    }


async def _each(
    symbols: Sequence[str], read: Callable[[str], Awaitable[T]]
) -> dict[str, T | DomainError]:
    """One direct read per symbol, concurrently (the gateway is down); errors kept."""
    answers = await asyncio.gather(*(read(s) for s in symbols), return_exceptions=True)
    found: dict[str, T | DomainError] = {}
    for symbol, answer in zip(symbols, answers, strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, DomainError):
            raise answer
        found[symbol] = answer
    return found
