"""The reference apps: the trade path's hops with no logic, and a FastAPI hello-world.

Four minimal FastAPI apps make the same calls as the real stack (trade -> approve;
approve -> price and regime in parallel; regime -> ohlcv) over raw aiohttp, one
`ClientSession` per app opened in its lifespan. Payloads have the real shapes and the
candle list the real size, so the bare chain pays the same transport and JSON costs and
nothing else. Each factory reads its downstream URLs from the environment (`BARE_*_URL`)
so uvicorn can serve it with `--factory` as its own process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI, Request

# The real regime service's default window asks the gateway for about this many candles.
BARE_CANDLES = int(os.environ.get("BARE_CANDLES", "100"))
_TIMESTAMP = "2024-01-01T00:00:00Z"
_CANDLES = [
    {
        "timestamp": _TIMESTAMP,
        "open": 42000.0 + i,
        "high": 42010.5 + i,
        "low": 41990.25 + i,
        "close": 42005.75 + i,
        "volume": 12.345678 + i,
    }
    for i in range(BARE_CANDLES)
]


def _session_lifespan(app: FastAPI) -> Any:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=4.0)
        timeout = aiohttp.ClientTimeout(total=5.0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            app.state.http = session
            yield

    return lifespan


def _url(name: str) -> str:
    return os.environ[name].rstrip("/")


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


def create_gateway() -> FastAPI:
    """A gateway that answers from constants: the price and the candle list."""
    app = FastAPI()

    @app.get("/api/v1/price/{symbol}")
    async def price(symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "price": 42000.5, "timestamp": _TIMESTAMP, "source": "bare"}

    @app.get("/api/v1/ohlcv/{symbol}")
    async def ohlcv(symbol: str, granularity: int = 60) -> dict[str, Any]:
        return {"symbol": symbol, "granularity": granularity, "source": "bare", "data": _CANDLES}

    return app


def create_regime() -> FastAPI:
    """A regime service that fetches candles and names a fixed regime."""
    app = FastAPI()
    app.router.lifespan_context = _session_lifespan(app)
    gateway = _url("BARE_MARKET_DATA_URL")

    @app.get("/api/v1/regime/{symbol}")
    async def regime(symbol: str, request: Request) -> dict[str, Any]:
        candles = await _get(request.app.state.http, f"{gateway}/api/v1/ohlcv/{symbol}")
        return {
            "symbol": symbol,
            "regime": "TRENDING",
            "confidence": 0.5,
            "indicators": {"adx": 30.0, "choppiness": 40.0, "volatility": 0.001},
            "timestamp": candles["data"][-1]["timestamp"],
        }

    return app


def create_risk() -> FastAPI:
    """A risk service that fetches price and regime in parallel and approves everything."""
    app = FastAPI()
    app.router.lifespan_context = _session_lifespan(app)
    gateway, regime_url = _url("BARE_MARKET_DATA_URL"), _url("BARE_REGIME_URL")

    @app.post("/api/v1/approve-trade")
    async def approve(request: Request) -> dict[str, Any]:
        body = await request.json()
        symbol = body["symbol"]
        http = request.app.state.http
        price, regime = await asyncio.gather(
            _get(http, f"{gateway}/api/v1/price/{symbol}"),
            _get(http, f"{regime_url}/api/v1/regime/{symbol}"),
        )
        return {
            "approved": True,
            "max_amount": body["amount"],
            "reason": "approved",
            "risk_metrics": {"portfolio_var": 0.01, "concentration_risk": 0.1},
            "regime": regime["regime"],
            "price": price["price"],
        }

    return app


def create_execution() -> FastAPI:
    """An execution service that asks risk and answers with an order, writing nothing."""
    app = FastAPI()
    app.router.lifespan_context = _session_lifespan(app)
    risk = _url("BARE_RISK_URL")

    @app.post("/api/v1/trade", status_code=201)
    async def trade(request: Request) -> dict[str, Any]:
        body = await request.json()
        ask = {**body, "current_portfolio": {"cash": 100000.0, "positions": {}}}
        async with request.app.state.http.post(f"{risk}/api/v1/approve-trade", json=ask) as resp:
            resp.raise_for_status()
            decision = await resp.json()
        return {
            "order_id": "bare",
            "status": "FILLED",
            "symbol": body["symbol"],
            "side": body["side"],
            "requested_amount": body["amount"],
            "filled_amount": body["amount"],
            "price": decision["price"],
            "risk": decision,
            "created_at": _TIMESTAMP,
        }

    return app


def create_hello() -> FastAPI:
    """The floor: FastAPI answering a constant."""
    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app
