"""Upstreams for the service tests: the real gateway and regime apps, and a regime stub.

The gateway and the regime service are the real `create_app`s over the simulator at a
fixed clock (so prices are known to the test), or over the fake Coinbase. The stub lets
a test choose the regime and its volatility exactly.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from market_data_gateway.app import create_app as create_gateway
from market_data_gateway.config import Settings as GatewaySettings
from regime_detection.app import create_app as create_regime
from regime_detection.config import Settings as RegimeSettings

from shared.market.models import utc_iso
from shared.market.simulated import SimulatedMarket
from shared.market.source import MarketSource
from tests.support.contract import ContractError, check_answer

REGIME_PATH = "/api/v1/regime/{symbol}"
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
    """A regime service that answers `regime` with a chosen per-candle `volatility`.

    Held to the contract: an answer off Regime Detection's OpenAPI schema is answered 500
    and kept in `violations` (the `stack` fixture fails the test with it).
    """

    def __init__(self, regime: str, volatility: float | None) -> None:
        self.regime = regime
        self.volatility = volatility
        self.trace_ids: list[str | None] = []
        self.violations: list[str] = []

    def answer(self, symbol: str, granularity: int) -> dict[str, Any]:
        return {
            "symbol": symbol,
            "regime": self.regime,
            "confidence": 0.7,
            "indicators": {
                "adx": 30.0,
                "choppiness": 40.0,
                "volatility": self.volatility,
                "volatility_annualized": None,
                "fast_volatility_annualized": None,
                "true_range_ratio": None,
                "efficiency_ratio": None,
            },
            "timestamp": utc_iso(NOW),
            "as_of": utc_iso(NOW),
            "granularity": granularity,
            "periods": 100,
            "candles": 100,
            "baseline_candles": 300,
            "thresholds": {
                "true_range_ratio": 2.5,
                "volatility_ceiling_annualized": 1.5,
                "efficiency_ratio": 0.35,
                "confirm_candles": 3,
            },
            "source": "simulated",
            "via": "gateway",
            "reason": None,
        }

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get(REGIME_PATH)
        async def regime(symbol: str, request: Request, granularity: int = 60) -> Response:
            self.trace_ids.append(request.headers.get("x-trace-id"))
            body = self.answer(symbol, granularity)
            try:
                check_answer("regime_detection", "GET", REGIME_PATH, 200, "application/json", body)
            except ContractError as exc:
                self.violations.append(str(exc))
                return JSONResponse({"detail": str(exc)}, status_code=500)
            return JSONResponse(body)

        return app
