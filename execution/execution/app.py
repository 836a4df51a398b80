"""The Execution app: `create_app(settings)` and the lifespan that owns the ledger and clients."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from execution import console
from execution.account import Accounts
from execution.broker import Costs
from execution.config import Settings
from execution.db import Database, open_database
from execution.deps import State
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
from shared.health import CheckFn, CheckResult, Dependency, breaker_check
from shared.logs import configure_logging
from shared.market.source import MarketSource
from shared.market.wiring import open_market
from shared.metrics import AppMetrics, Timings
from shared.transport import HttpxTransport, Transport

log = logging.getLogger(__name__)

DESCRIPTION = """\
Paper execution with a durable SQL ledger. A trade reads the account from the ledger,
asks Risk Management with that portfolio, and fills `min(amount, max_amount)` at the
price in Risk's decision (read from the gateway a moment before) moved against the
trader by `SLIPPAGE_BPS`, paying `FEE_BPS` on the notional. Order, fill and balances are
written in one transaction that re-checks cash, holdings and Risk's limits under a lock:
concurrent trades never overdraw nor take a position past its limits. The trading state
(`/api/v1/trading-state`: ACTIVE, REDUCING, HALTED) can refuse trades (409, recorded);
protections halt trading by themselves on a daily loss or a drawdown. Risk unreachable:
503 with Retry-After and no trade; the attempt is still listed. `Idempotency-Key`: the
same key and body within 24 h answer the stored order; a different body is a 422.
"""
PURGE_EVERY_SECONDS = 3600.0


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
    configure_logging("execution", settings.log_level, settings.log_format)
    metrics = AppMetrics()
    writes = Timings(LEDGER_WRITE_BUCKETS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with contextlib.AsyncExitStack() as stack:
            database = open_database(settings)
            database.observe_write = writes.observe
            stack.push_async_callback(database.dispose)
            await migrate(database, starting_cash=settings.starting_cash)
            wiring = await stack.enter_async_context(
                open_market(
                    settings,
                    transport=transport,
                    market_source=market_source,
                    clock=clock,
                    sleep=sleep,
                )
            )
            risk_client = wiring.client("risk_management", settings)
            keys = IdempotencyStore(
                database,
                ttl=timedelta(hours=settings.idempotency_ttl_hours),
                lock_seconds=settings.idempotency_lock_seconds,
                wait_seconds=settings.idempotency_wait_seconds,
            )
            events = EventBus()
            ledger = Ledger(database)
            trading = TradingStateStore(
                database,
                on_change=lambda change: events.publish(
                    "trading_state", TradingStateOut.of(change).model_dump()
                ),
            )
            order_rate = OrderRateLimiter(settings.max_orders_per_minute)
            limits = ProtectionLimits(
                daily_loss_share=settings.max_daily_loss_share,
                drawdown_share=settings.max_drawdown_share,
            )
            protections = Protections(database, limits)
            trades = TradeService(
                ledger=ledger,
                keys=keys,
                risk=risk_client,
                costs=Costs(
                    slippage_bps=settings.slippage_bps,
                    fee_bps=settings.fee_bps,
                    min_order_amount=settings.min_order_amount,
                ),
                retry_after=settings.unavailable_retry_after_seconds,
                protections=limits,
                on_order=lambda order: events.publish("order", order_fields(order)),
                symbols=SymbolList(wiring.market, ttl=settings.symbols_ttl_seconds),
            )
            valuer = PortfolioValuer(
                wiring.market, stale_after=timedelta(seconds=settings.price_stale_seconds)
            )
            history = History(ledger, valuer, events)
            families = ExecutionFamilies(trades, history, trading, writes)
            await families.refresh()
            metrics.clients = lambda: [risk_client, wiring.gateway]
            metrics.before_scrape = [families.refresh]
            metrics.sources = [families]
            purger = asyncio.create_task(_purge_keys(keys))
            stack.callback(purger.cancel)
            guard = asyncio.create_task(
                protections.run(
                    functools.partial(_equity, ledger, valuer),
                    settings.protection_check_seconds,
                )
            )
            stack.callback(guard.cancel)
            # Subscribed before the first request, so no fill goes unrecorded.
            fills = stack.enter_context(events.subscribe())
            recorder = asyncio.create_task(
                history.run(
                    fills,
                    settings.portfolio_history_seconds,
                    spacing=settings.portfolio_fill_point_seconds,
                )
            )
            stack.callback(recorder.cancel)

            async def served_here(scope: Scope, receive: Receive, send: Send) -> None:
                # The service calling itself in process (the console's health watch): the
                # lifespan's state goes with each request, as uvicorn passes it.
                await app({**scope, "state": dict(state)}, receive, send)

            watch = HealthWatch(
                events,
                own=HttpxTransport(httpx.ASGITransport(app=served_here)),
                transport=wiring.transport,
                urls={name: settings.url_of(name) for name in OTHERS},
                interval=settings.console_health_seconds,
            )
            state: State = {
                "trades": trades,
                "ledger": ledger,
                "orders": OrderBook(database),
                "valuer": valuer,
                "accounts": Accounts(database, starting_cash=settings.starting_cash),
                "history": history,
                "events": events,
                "trading": trading,
                "watch": watch,
                "order_rate": order_rate,
                "regime_client": wiring.client("regime_detection", settings),
                # The ledger is critical (no trades without it); the upstreams are not.
                "health_checks": [
                    Dependency("database", database_check(database), critical=True),
                    Dependency("risk_management", breaker_check(risk_client.breaker)),
                    Dependency("market_data", breaker_check(wiring.gateway.breaker)),
                    Dependency("market_source", wiring.choice.check),
                ],
            }
            watcher = asyncio.create_task(watch.run())
            stack.callback(watcher.cancel)
            yield state

    app = build_app(
        service="execution",
        settings=settings,
        metrics=metrics,
        title="Execution",
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=[router, console.router, console.page_router],
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


def database_check(database: Database) -> CheckFn:
    """`/health`: the ledger answers a trivial query."""

    async def check() -> CheckResult:
        await database.read(lambda conn: conn.execute(text("SELECT 1")))
        return CheckResult("healthy", {"dialect": database.dialect})

    return check
