"""Stand-ins for Execution's upstreams: a Risk server and a gateway that answer as told."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.market.models import CandleSeries, Product, Quote, utc_iso
from shared.market.source import MarketUnavailableError, UnknownSymbolError

RiskRule = Callable[[dict[str, Any]], dict[str, Any] | JSONResponse]
PRICE = 100.0
# What the stub gateway lists for trading.
LISTED = ("BTC-USD", "ETH-USD", "SOL-USD")


def approve_all(body: dict[str, Any]) -> dict[str, Any]:
    """Approve the full amount at PRICE, as a permissive Risk would."""
    return {
        "approved": True,
        "max_amount": body["amount"],
        "reason": "Approved",
        "risk_metrics": {"portfolio_var": 0.01, "concentration_risk": 0.1},
        "regime": "TRENDING",
        "price": PRICE,
    }


@dataclass
class RiskStub:
    """The Risk service's contract, answering with `rule`; remembers every request."""

    rule: RiskRule = approve_all
    requests: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/api/v1/approve-trade")
        async def approve(request: Request) -> Any:
            body = await request.json()
            self.requests.append(body)
            self.keys.append(request.headers.get("Idempotency-Key"))
            return self.rule(body)

        return app

    def reset(self) -> None:
        self.rule = approve_all
        self.requests.clear()
        self.keys.clear()


@dataclass
class GatewayStub:
    """`GET /api/v1/price/{symbol}` from `prices`; unknown symbols 404, `down` ones 503."""

    prices: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    listed: list[str] = field(default_factory=lambda: list(LISTED))

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/api/v1/price/{symbol}")
        async def price(symbol: str) -> Any:
            if symbol in self.down:
                return JSONResponse({"detail": "exchange down"}, status_code=503)
            if symbol not in self.prices:
                return JSONResponse({"detail": f"unknown {symbol}"}, status_code=404)
            value, at = self.prices[symbol]
            return {
                "symbol": symbol,
                "price": value,
                "timestamp": utc_iso(at),
                "source": "coinbase",
            }

        @app.get("/api/v1/symbols")
        async def symbols() -> Any:
            return {
                "source": "coinbase",
                "symbols": [
                    {"symbol": s, "base": s.split("-")[0], "quote": s.split("-")[1], "listed": True}
                    for s in self.listed
                ],
            }

        return app

    def reset(self) -> None:
        self.prices.clear()
        self.down.clear()
        self.listed = list(LISTED)


class FakeSource:
    """The direct market source behind the gateway: knows `prices`, else unavailable."""

    name = "simulated"

    def __init__(self) -> None:
        self.prices: dict[str, float] = {}

    async def price(self, symbol: str) -> Quote:
        if symbol not in self.prices:
            raise MarketUnavailableError("market", f"no price for {symbol}")
        return Quote(symbol, self.prices[symbol], datetime.now(UTC), "simulated")

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        raise UnknownSymbolError(symbol)

    async def products(self) -> list[Product]:
        return [Product(s, s.split("-")[0], s.split("-")[1], listed=True) for s in LISTED]

    async def aclose(self) -> None:
        return None
