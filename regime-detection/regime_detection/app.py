"""The Regime Detection app: `create_app(settings)` and the lifespan that owns its clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from regime_detection.config import Settings
from regime_detection.deps import State
from regime_detection.metrics import regime_families
from regime_detection.routes import router
from regime_detection.service import RegimeService
from shared.app import build_app
from shared.health import Dependency, breaker_check
from shared.logs import configure_logging
from shared.market.source import MarketSource
from shared.market.wiring import open_market
from shared.metrics import AppMetrics
from shared.transport import Transport


def _description(s: Settings) -> str:
    return (
        "Classifies a symbol's market regime from closed candles read through the Market "
        "Data Gateway (or the market source directly when the gateway is down), deciding "
        f"on the newest candles: VOLATILE when the mean true range of the last "
        f"{s.fast_volatility_periods} candles is at least {s.true_range_ratio_threshold}x "
        f"the symbol's typical true range (the lookback's {s.typical_range_quantile} quantile) "
        "or the std of their log returns, annualised, reaches "
        f"{s.volatility_ceiling_annualized:.0%}; else TRENDING when Kaufman's efficiency "
        f"ratio over {s.efficiency_periods} closes is at least {s.efficiency_threshold}; "
        f"else CHOPPY. The answer changes only once {s.confirm_candles} candles in a row "
        f"call the new regime. ADX({s.adx_period}) (TA-Lib's), Choppiness({s.chop_period}) "
        "and the window's volatility (std of close-to-close log returns, per candle) are "
        f"reported beside the figures that decide, over the last {s.default_periods} candles "
        f"unless `periods` says otherwise; the typical true range over the last "
        f"{s.baseline_periods}."
    )


def create_app(
    settings: Settings | None = None,
    *,
    transport: Transport | None = None,
    market_source: MarketSource | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    """Build the app; `transport`, `market_source`, `clock` and `sleep` are seams for tests."""
    settings = settings or Settings()
    # Now, not in the lifespan: uvicorn logs its first lines before the lifespan runs.
    configure_logging("regime-detection", settings.log_level, settings.log_format)
    metrics = AppMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with open_market(
            settings, transport=transport, market_source=market_source, clock=clock, sleep=sleep
        ) as wiring:
            regimes = RegimeService(wiring.market, settings, clock=clock)
            metrics.clients = lambda: [wiring.gateway]
            metrics.sources = [lambda: regime_families(regimes)]
            yield {
                "regimes": regimes,
                "health_checks": [
                    Dependency("market_data", breaker_check(wiring.gateway.breaker)),
                    Dependency("market_source", wiring.choice.check),
                ],
            }

    return build_app(
        service="regime-detection",
        settings=settings,
        metrics=metrics,
        title="Regime Detection",
        description=_description(settings),
        lifespan=lifespan,
        routers=[router],
    )
