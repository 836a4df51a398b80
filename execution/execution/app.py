"""The Execution app: `create_app(settings)` and the lifespan that owns the ledger and clients."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from execution import console
from execution.account import Accounts
from execution.broker import Costs
from execution.config import Settings
from execution.db import Database, open_database
from execution.events import EventBus
from execution.history import History
from execution.idempotency import IdempotencyStore
from execution.ledger import Ledger
from execution.metrics import LEDGER_WRITE_BUCKETS, ExecutionFamilies
from execution.migrate import migrate
from execution.orders import OrderBook
from execution.portfolio import PortfolioValuer
from execution.protections import ProtectionLimits, Protections
from execution.ratelimit import OrderRateLimiter
from execution.routes import router
from execution.schemas import TradingStateOut, order_fields
from execution.service import TradeService
from execution.symbols import SymbolList
from execution.trading_state import TradingStateStore
from execution.watch import OTHERS, HealthWatch
from shared.app import build_app
from shared.health import CheckResult, Dependency, breaker_check
from shared.logs import configure_logging
from shared.market.factory import SourceChoice
from shared.market.source import MarketSource
from shared.market.wiring import open_market
from shared.metrics import AppMetrics, Timings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Paper execution with a durable SQL ledger. A trade reads the account from the ledger,
asks Risk Management with that portfolio, and fills `min(amount, max_amount)` at the
price in Risk's decision (read from the gateway a moment before) moved against the
trader by `SLIPPAGE_BPS`, paying `FEE_BPS` on the notional. Order, fill and balances are
written in one transaction that re-checks cash and holdings under a lock: concurrent
trades never overdraw. Risk unreachable: 503 with Retry-After and no trade; the attempt
is still listed. `Idempotency-Key`: the same key and body within 24 h answer the stored
order; a different body is a 422.
"""
PURGE_EVERY_SECONDS = 3600.0


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    direct_source: MarketSource | None = None,
) -> FastAPI:
    """Build the service; `transport` and `direct_source` are seams for tests."""
    settings = settings or Settings()
    metrics = AppMetrics()
    writes = Timings(LEDGER_WRITE_BUCKETS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("execution", settings.log_level, settings.log_format)
        async with contextlib.AsyncExitStack() as stack:
            db = open_database(settings)
            db.observe_write = writes.observe
            stack.push_async_callback(db.dispose)
            await migrate(db, starting_cash=settings.starting_cash)
            wiring = await stack.enter_async_context(
                open_market(settings, transport=transport, direct_source=direct_source)
            )
            risk, gateway, choice = (
                wiring.client("risk_management", settings),
                wiring.gateway,
                wiring.choice,
            )
            keys = IdempotencyStore(
                db,
                ttl=timedelta(hours=settings.idempotency_ttl_hours),
                lock_seconds=settings.idempotency_lock_seconds,
                wait_seconds=settings.idempotency_wait_seconds,
            )
            bus = app.state.events = EventBus()
            app.state.db, app.state.risk, app.state.gateway = db, risk, gateway
            app.state.regime = wiring.client("regime_detection", settings)
            app.state.source = choice
            app.state.ledger = Ledger(db)
            app.state.orders = OrderBook(db)
            app.state.trading = TradingStateStore(
                db,
                on_change=lambda change: bus.publish(
                    "trading_state", TradingStateOut.of(change).model_dump()
                ),
            )
            app.state.order_rate = OrderRateLimiter(settings.max_orders_per_minute)
            limits = ProtectionLimits(
                daily_loss_share=settings.max_daily_loss_share,
                drawdown_share=settings.max_drawdown_share,
            )
            app.state.protections = Protections(db, limits)
            app.state.trades = TradeService(
                ledger=app.state.ledger,
                keys=keys,
                risk=risk,
                costs=Costs(
                    slippage_bps=settings.slippage_bps,
                    fee_bps=settings.fee_bps,
                    min_order_amount=settings.min_order_amount,
                ),
                retry_after=settings.unavailable_retry_after_seconds,
                protections=limits,
                on_order=lambda order: bus.publish("order", order_fields(order)),
                symbols=SymbolList(wiring.market, ttl=settings.symbols_ttl_seconds),
            )
            app.state.valuer = PortfolioValuer(
                wiring.market,
                stale_after=timedelta(seconds=settings.price_stale_seconds),
            )
            app.state.accounts = Accounts(db, starting_cash=settings.starting_cash)
            app.state.history = History(app.state.ledger, app.state.valuer, bus)
            families = ExecutionFamilies(
                app.state.trades, app.state.history, app.state.trading, writes
            )
            await families.refresh()
            metrics.clients = lambda: [risk, gateway]
            metrics.before_scrape = [families.refresh]
            metrics.sources = [families]
            purger = asyncio.create_task(_purge_keys(keys))
            stack.callback(purger.cancel)
            guard = asyncio.create_task(
                app.state.protections.run(
                    functools.partial(_equity, app.state.ledger, app.state.valuer),
                    settings.protection_check_seconds,
                )
            )
            stack.callback(guard.cancel)
            # Subscribed before the first request, so no fill goes unrecorded.
            fills = stack.enter_context(bus.subscribe())
            recorder = asyncio.create_task(
                app.state.history.run(fills, settings.portfolio_history_seconds)
            )
            stack.callback(recorder.cancel)
            own = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://execution"
            )
            stack.push_async_callback(own.aclose)
            app.state.watch = HealthWatch(
                bus,
                own=own,
                http=wiring.http,
                urls={name: settings.url_of(name) for name in OTHERS},
                interval=settings.console_health_seconds,
            )
            watcher = asyncio.create_task(app.state.watch.run())
            stack.callback(watcher.cancel)
            yield

    app = build_app(
        service="execution",
        settings=settings,
        metrics=metrics,
        title="Execution",
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=[router, console.router, console.page_router],
        dependencies=_dependencies,
    )
    app.mount("/console", console.console_assets(), name="console")
    return app


async def _equity(ledger: Ledger, valuer: PortfolioValuer) -> Decimal | None:
    """Equity at the portfolio's prices; None while a position has no price at all."""
    portfolio = await valuer.value(await ledger.holdings())
    if any(p.market_value is None for p in portfolio.positions):
        return None
    return Decimal(str(portfolio.equity))


async def _purge_keys(keys: IdempotencyStore) -> None:
    """Forget expired Idempotency-Keys now and then, every hour while the process runs."""
    while True:
        try:
            purged = await keys.purge_expired()
            if purged:
                log.info("purged %d expired idempotency keys", purged)
        except Exception as exc:  # a busy database must not end the purger
            log.warning("idempotency key purge failed: %s", exc)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


def _dependencies(app: FastAPI) -> list[Dependency]:
    """The ledger (critical: no trades without it) and the upstreams' breakers."""
    if not hasattr(app.state, "trades"):
        return []
    db: Database = app.state.db
    choice: SourceChoice = app.state.source

    async def database_check() -> CheckResult:
        await db.read(lambda conn: conn.execute(text("SELECT 1")))
        return CheckResult("healthy", {"dialect": db.dialect})

    return [
        Dependency("database", database_check, critical=True),
        Dependency("risk_management", breaker_check(app.state.risk.breaker)),
        Dependency("market_data", breaker_check(app.state.gateway.breaker)),
        Dependency("market_source", choice.check),
    ]
