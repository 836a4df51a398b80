"""Upstreams for the service tests: the real gateway and regime apps, and a regime stub.

The gateway and the regime service are the real `create_app`s over the simulator at a
fixed clock (so prices are known to the test), or over the fake Coinbase. The stub lets
a test choose the regime and its volatility exactly.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI, Request
from market_data_gateway.app import create_app as create_gateway
from market_data_gateway.config import Settings as GatewaySettings
from regime_detection.app import create_app as create_regime
from regime_detection.config import Settings as RegimeSettings

from shared.market.models import utc_iso
from shared.market.simulated import SimulatedMarket
from shared.market.source import MarketSource

NOW = 1_700_000_000.0  # a fixed clock: the simulator's prices are then fixed too


def fixed_clock() -> float:
    return NOW


def simulator() -> SimulatedMarket:
    return SimulatedMarket(7, clock=fixed_clock)


def gateway(**settings: Any) -> FastAPI:
    """The real gateway, simulated at the fixed clock unless `settings` say otherwise."""
    config = GatewaySettings(**{"market_data_source": "simulated", "redis_url": None, **settings})
    return create_gateway(config, clock=fixed_clock)


def regime_service(gateway_url: str) -> FastAPI:
    """The real regime service reading candles from the gateway at `gateway_url`."""
    config = RegimeSettings(market_data_url=gateway_url, market_data_source="simulated")
    return create_regime(config, market_source=cast(MarketSource, simulator()), clock=fixed_clock)


class RegimeStub:
    """A regime service that answers `regime` with a chosen per-candle `volatility`."""

    def __init__(self, regime: str, volatility: float | None) -> None:
        self.regime = regime
        self.volatility = volatility
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
