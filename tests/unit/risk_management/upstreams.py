"""Small real upstreams for the service tests: a gateway over the simulator, a regime stub.

They speak the contract's JSON (DESIGN.md) so the risk service's real clients are used
end to end over sockets; only what the answers contain is chosen by the test.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request

from shared.market.models import utc_iso
from shared.market.simulated import SimulatedMarket

NOW = 1_700_000_000.0  # a fixed clock: the simulator's prices are then fixed too
UNLISTED = "NOPE-USD"


def simulator() -> SimulatedMarket:
    return SimulatedMarket(7, clock=lambda: NOW)


def gateway_app(market: SimulatedMarket) -> FastAPI:
    """The gateway's price and OHLCV endpoints over `market`; 404 for `UNLISTED`."""
    app = FastAPI()

    @app.get("/api/v1/price/{symbol}")
    async def price(symbol: str) -> dict[str, Any]:
        if symbol == UNLISTED:
            raise HTTPException(404, f"{symbol} is not listed")
        quote = await market.price(symbol)
        return {"symbol": symbol, "price": quote.price, "timestamp": utc_iso(quote.time),
                "source": quote.source}  # fmt: skip

    @app.get("/api/v1/ohlcv/{symbol}")
    async def ohlcv(symbol: str, periods: int = 60, granularity: int = 60) -> dict[str, Any]:
        series = await market.candles(symbol, granularity, periods)
        data = [
            {"timestamp": utc_iso(c.time), "open": c.open, "high": c.high, "low": c.low,
             "close": c.close, "volume": c.volume}
            for c in series.candles
        ]  # fmt: skip
        return {"symbol": symbol, "granularity": granularity, "source": "simulated", "data": data}

    return app


class RegimeStub:
    """A regime service that answers `regime` with a per-candle `volatility`."""

    def __init__(self, regime: str, volatility: float | None, granularity: int = 60) -> None:
        self.regime = regime
        self.volatility = volatility
        self.granularity = granularity
        self.trace_ids: list[str | None] = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/api/v1/regime/{symbol}")
        async def regime(symbol: str, request: Request, granularity: int = 60) -> dict[str, Any]:
            self.trace_ids.append(request.headers.get("x-trace-id"))
            return {
                "symbol": symbol,
                "regime": self.regime,
                "confidence": 0.7,
                "granularity": granularity,
                "indicators": {"adx": 30.0, "choppiness": 40.0, "volatility": self.volatility},
                "timestamp": utc_iso(NOW),
            }

        return app
