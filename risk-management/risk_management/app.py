"""The Risk Management app: `create_app(settings)` and the lifespan that owns its clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from risk_management.config import Settings
from risk_management.deps import State
from risk_management.metrics import risk_families
from risk_management.routes import router
from risk_management.service import RiskService
from shared.app import build_app
from shared.health import Dependency, breaker_check
from shared.logs import configure_logging
from shared.market.source import MarketSource
from shared.market.wiring import open_market
from shared.metrics import AppMetrics
from shared.transport import Transport

DESCRIPTION = """\
Pre-trade approval and sizing. A buy is bounded by cash (less a fee reserve), a
parametric one-day VaR limit on the post-trade portfolio, a position cap as a share of
equity, and the regime multiplier; a sell only by what is held. `risk_metrics` are
shares of post-trade equity. VaR model: normal returns, zero mean, positions perfectly
correlated (VaR is the sum of per-position VaRs), daily volatility from the regime
service's per-candle volatility (or the candles) scaled by the square root of time.
Regime service down: sized as UNKNOWN. No price: refused.
"""


def create_app(
    settings: Settings | None = None,
    *,
    transport: Transport | None = None,
    market_source: MarketSource | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    """Build the service; `transport`, `market_source`, `clock` and `sleep` are seams for tests."""
    settings = settings or Settings()
    # Now, not in the lifespan: uvicorn logs its first lines before the lifespan runs.
    configure_logging("risk-management", settings.log_level, settings.log_format)
    metrics = AppMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with open_market(
            settings, transport=transport, market_source=market_source, clock=clock, sleep=sleep
        ) as wiring:
            regime_client = wiring.client("regime_detection", settings)
            risk_service = RiskService(settings, wiring.market, regime_client)
            metrics.clients = lambda: [wiring.gateway, regime_client]
            metrics.sources = [lambda: risk_families(risk_service)]
            yield {
                "risk_service": risk_service,
                # Upstreams as their breakers see them; neither is critical (each has a
                # fallback).
                "health_checks": [
                    Dependency("market_data", breaker_check(wiring.gateway.breaker)),
                    Dependency("regime_detection", breaker_check(regime_client.breaker)),
                    Dependency("market_source", wiring.choice.check),
                ],
            }

    return build_app(
        service="risk-management",
        settings=settings,
        metrics=metrics,
        title="Risk Management",
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=[router],
    )
