"""The Regime Detection app: `create_app(settings)` and the lifespan that owns its clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from regime_detection.config import Settings
from regime_detection.deps import State
from regime_detection.routes import router
from regime_detection.service import RegimeService
from shared.app import build_app
from shared.health import Dependency, breaker_check
from shared.logs import configure_logging
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
    market_source: MarketSource | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    """Build the app; `transport`, `market_source`, `clock` and `sleep` are seams for tests."""
    settings = settings or Settings()
    # Now, not in the lifespan: uvicorn logs its first lines before the lifespan runs.
    configure_logging("regime-detection", settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with open_market(
            settings, transport=transport, market_source=market_source, clock=clock, sleep=sleep
        ) as wiring:
            yield {
                "regimes": RegimeService(wiring.market, settings, clock=clock),
                "health_checks": [
                    Dependency("market_data", breaker_check(wiring.gateway.breaker)),
                    Dependency("market_source", wiring.choice.check),
                ],
            }

    return build_app(
        title="Regime Detection",
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=[router],
    )
