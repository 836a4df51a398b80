"""`create_app`: the Market Data Gateway, its lifespan (HTTP client, source, cache) and health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from market_data_gateway.cache import LocalCache, MarketCache
from market_data_gateway.config import Settings
from market_data_gateway.metrics import gateway_families
from market_data_gateway.redis_cache import RedisCache
from market_data_gateway.routes import router
from market_data_gateway.service import GatewayService
from shared.app import build_app
from shared.health import CheckResult, Dependency
from shared.logs import configure_logging
from shared.market.factory import SourceChoice, choose_source
from shared.metrics import AppMetrics
from shared.transport import make_http_client

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
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    """The gateway app; `transport`, `clock` and `sleep` are seams for tests."""
    config = settings or Settings()
    metrics = AppMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("market-data-gateway", config.log_level, config.log_format)
        http = make_http_client(transport, timeout=config.coinbase_timeout_seconds)
        cache = build_cache(config, clock)
        try:
            choice = await choose_source(
                config, http, clock=clock, sleep=sleep, options=config.coinbase_options()
            )
            app.state.choice = choice
            app.state.service = GatewayService(
                choice.source,
                cache,
                price_ttl=config.price_ttl_seconds,
                incomplete_ttl=config.ohlcv_incomplete_ttl_seconds,
                unknown_symbol_ttl=config.unknown_symbol_ttl_seconds,
                symbols_ttl=config.symbols_ttl_seconds,
                clock=clock,
            )
            metrics.sources = [lambda: gateway_families(app.state.service)]
            yield
            await choice.source.aclose()
        finally:
            await cache.aclose()
            await http.aclose()

    def dependencies(app: FastAPI) -> list[Dependency]:
        service: GatewayService = app.state.service
        return [
            Dependency("cache", service.cache.check),
            Dependency("market_source", source_check(app.state.choice, service)),
        ]

    return build_app(
        service="market-data",
        settings=config,
        metrics=metrics,
        title="Market Data Gateway",
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=[router],
        dependencies=dependencies,
    )
