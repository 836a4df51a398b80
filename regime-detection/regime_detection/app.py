"""The Regime Detection app: `create_app(settings)` and the lifespan that owns its clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from regime_detection.config import Settings
from regime_detection.routes import router
from regime_detection.service import RegimeService
from shared.app import build_app
from shared.health import Dependency, breaker_check
from shared.logs import configure_logging
from shared.market.factory import SourceChoice
from shared.market.source import MarketSource
from shared.market.wiring import open_market

DESCRIPTION = (
    "Classifies a symbol's market regime from closed candles read through the Market "
    "Data Gateway (or the market source directly when the gateway is down): VOLATILE "
    "when volatility (std of close-to-close log returns, per candle) is high against "
    "the symbol's own baseline or above an annualised ceiling; else TRENDING when "
    "ADX(14) >= 25 and Choppiness(14) < 61.8; else CHOPPY."
)


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    source: MarketSource | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the app; `transport`, `source` and `clock` are seams for tests."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("regime-detection", settings.log_level, settings.log_format)
        async with open_market(
            settings, transport=transport, direct_source=source, clock=clock
        ) as wiring:
            app.state.gateway = wiring.gateway
            app.state.source_choice = wiring.choice
            app.state.regime = RegimeService(wiring.market, settings, clock=clock)
            yield

    def dependencies(app: FastAPI) -> list[Dependency]:
        choice: SourceChoice = app.state.source_choice
        return [
            Dependency("market_data", breaker_check(app.state.gateway.breaker)),
            Dependency("market_source", choice.check),
        ]

    return build_app(
        title="Regime Detection",
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=[router],
        dependencies=dependencies,
        api_keys=settings.api_keys,
    )
