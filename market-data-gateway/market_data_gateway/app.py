"""`create_app`: the Market Data Gateway, its lifespan (HTTP client, source, cache) and health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from market_data_gateway.cache import LocalCache, MarketCache
from market_data_gateway.config import Settings
from market_data_gateway.deps import State
from market_data_gateway.metrics import gateway_families
from market_data_gateway.redis_cache import RedisCache
from market_data_gateway.routes import router
from market_data_gateway.service import GatewayService
from shared.app import build_app
from shared.health import CheckResult, Dependency
from shared.logs import configure_logging
from shared.market.factory import SourceChoice, choose_source
from shared.market.source import MarketSource
from shared.metrics import AppMetrics
from shared.transport import Transport, opened

DESCRIPTION = """Prices and closed OHLCV candles for every other service.

Reads Coinbase Exchange (or the deterministic simulator, see `MARKET_DATA_SOURCE`); every
answer names its `source`. Answers are cached (Redis at `REDIS_URL`, else in-process):
prices for `PRICE_TTL_SECONDS`, candles until the next candle closes. A Redis outage only
makes the service `degraded`; it keeps answering, uncached."""


def build_cache(settings: Settings, clock: Callable[[], float]) -> MarketCache:
    """The in-process layer, with Redis behind it when `REDIS_URL` is set."""
    local = LocalCache(max_entries=settings.local_cache_max_entries, clock=clock)
    if settings.redis_url is None:
        return MarketCache(local)
    redis = RedisCache(
        settings.redis_url,
        prefix=settings.redis_key_prefix,
        socket_timeout=settings.redis_socket_timeout_seconds,
        retry_seconds=settings.redis_retry_seconds,
        clock=clock,
    )
    return MarketCache(local, redis)


def source_check(
    choice: SourceChoice, service: GatewayService
) -> Callable[[], Awaitable[CheckResult]]:
    """How the source was chosen, calls made to it, whether the latest failed (no I/O)."""

    async def check() -> CheckResult:
        detail = {**choice.describe(), "upstream_calls": dict(service.upstream_calls)}
        last_error: str | None = getattr(choice.source, "last_error", None)
        if last_error:
            return CheckResult("degraded", {**detail, "last_error": last_error})
        return CheckResult("healthy", detail)

    return check


def create_app(
    settings: Settings | None = None,
    *,
    transport: Transport | None = None,
    market_source: MarketSource | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    """The gateway app; `transport`, `market_source`, `clock` and `sleep` are seams for tests."""
    config = settings or Settings()
    # Now, not in the lifespan: uvicorn logs its first lines before the lifespan runs.
    configure_logging("market-data-gateway", config.log_level, config.log_format)
    metrics = AppMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        cache = build_cache(config, clock)
        try:
            async with opened(transport) as used:
                if market_source is not None:
                    choice = SourceChoice(market_source, "injected")
                else:
                    choice = await choose_source(config, used, clock=clock, sleep=sleep)
                market = GatewayService(
                    choice.source,
                    cache,
                    price_ttl=config.price_ttl_seconds,
                    incomplete_ttl=config.ohlcv_incomplete_ttl_seconds,
                    unknown_symbol_ttl=config.unknown_symbol_ttl_seconds,
                    symbols_ttl=config.symbols_ttl_seconds,
                    clock=clock,
                )
                metrics.sources = [lambda: gateway_families(market)]
                yield {
                    "market": market,
                    "health_checks": [
                        Dependency("cache", cache.check),
                        Dependency("market_source", source_check(choice, market)),
                    ],
                }
                await choice.source.aclose()
        finally:
            await cache.aclose()

    return build_app(
        service="market-data",
        settings=config,
        metrics=metrics,
        title="Market Data Gateway",
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=[router],
    )
