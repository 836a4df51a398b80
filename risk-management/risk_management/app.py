"""The Risk Management app: `create_app(settings)` and the lifespan that owns its clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from risk_management.config import Settings
from risk_management.metrics import risk_families
from risk_management.routes import router
from risk_management.service import RiskService
from shared.app import build_app
from shared.health import Dependency, breaker_check
from shared.logs import configure_logging
from shared.market.factory import SourceChoice
from shared.market.source import MarketSource
from shared.market.wiring import open_market
from shared.metrics import AppMetrics

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
    transport: httpx.AsyncBaseTransport | None = None,
    direct_source: MarketSource | None = None,
) -> FastAPI:
    """Build the service; `transport` and `direct_source` are seams for tests."""
    settings = settings or Settings()
    metrics = AppMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("risk-management", settings.log_level, settings.log_format)
        async with open_market(
            settings, transport=transport, direct_source=direct_source
        ) as wiring:
            regime = wiring.client("regime_detection", settings)
            app.state.gateway, app.state.regime = wiring.gateway, regime
            app.state.source = wiring.choice
            app.state.risk = RiskService(settings, wiring.market, regime)
            metrics.clients = lambda: [wiring.gateway, regime]
            metrics.sources = [lambda: risk_families(app.state.risk)]
            yield

    return build_app(
        service="risk-management",
        settings=settings,
        metrics=metrics,
        title="Risk Management",
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=[router],
        dependencies=_dependencies,
    )


def _dependencies(app: FastAPI) -> list[Dependency]:
    """Upstreams as their breakers see them; neither is critical (each has a fallback)."""
    if not hasattr(app.state, "risk"):
        return []
    choice: SourceChoice = app.state.source

    return [
        Dependency("market_data", breaker_check(app.state.gateway.breaker)),
        Dependency("regime_detection", breaker_check(app.state.regime.breaker)),
        Dependency("market_source", choice.check),
    ]
