"""Execution's settings: the ledger database, the paper broker's costs, idempotency."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field

from shared.settings import MarketSettings

# The embedded default ledger: a SQLite file in the service's own data folder.
DEFAULT_DATABASE_PATH = Path(__file__).resolve().parents[1] / "data" / "ledger.db"


class Settings(MarketSettings):
    """Every knob of the Execution service, read from the environment (upper-cased names)."""

    # `sqlite:///path` (the default) or `postgresql://user@host/db`; the driver (the
    # stdlib's sqlite3, asyncpg) is chosen by the service.
    database_url: str = f"sqlite:///{DEFAULT_DATABASE_PATH}"
    # SQLite only: FULL fsyncs the WAL on every commit, so a 201 survives a power cut;
    # NORMAL survives a process crash (SIGKILL) but not a power cut, and is faster.
    sqlite_synchronous: str = Field(default="FULL", pattern="^(FULL|NORMAL|EXTRA)$")
    # How long a writer waits for another process's SQLite write lock.
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0)
    # Connections per process; on SQLite also the reader threads (the busy fallback).
    db_pool_size: int = Field(default=10, ge=1)
    # SQLite only: at most this many queued writes commit together (one fsync for all).
    sqlite_max_batch: int = Field(default=32, ge=1)

    # Applied once, when the ledger is created.
    starting_cash: Decimal = Field(default=Decimal("100000"), ge=0)
    # The paper broker: slippage moves the price against the trader, the fee is on the notional.
    slippage_bps: Decimal = Field(default=Decimal("5"), ge=0, lt=10000)
    fee_bps: Decimal = Field(default=Decimal("10"), ge=0, lt=10000)
    # A fill clamped below this (cash or holdings ran short) is rejected instead.
    min_order_amount: Decimal = Field(default=Decimal("1"), gt=0)

    # Idempotency keys are answered from storage for this long, then forgotten.
    idempotency_ttl_hours: float = Field(default=24.0, ge=24.0)
    # The in-flight claim's lease: its owner renews it every third of this while the
    # request runs, so a claim not renewed for this long belongs to a crashed request and
    # a retry takes it over. Keep it well above a database stall (the replicas' clocks
    # must agree to within a fraction of it).
    idempotency_lock_seconds: float = Field(default=5.0, ge=1)
    # How long a duplicate waits for the in-flight original before answering 409.
    idempotency_wait_seconds: float = Field(default=30.0, gt=0)

    # Retry-After sent with a 503 when Risk cannot be reached and its breaker says nothing.
    unavailable_retry_after_seconds: float = Field(default=2.0, gt=0)
    # The market source's product list (what may be traded) is re-read this often.
    symbols_ttl_seconds: float = Field(default=300.0, gt=0)
    # How often the console's event stream reports the four services' health.
    console_health_seconds: float = Field(default=5.0, gt=0)
    # A point of the portfolio's history every this many seconds (0: only after fills).
    portfolio_history_seconds: float = Field(default=60.0, ge=0)
    # After a fill's point, the next one waits this long: the fills meanwhile share it.
    portfolio_fill_point_seconds: float = Field(default=1.0, ge=0)
    # A quote older than this is marked stale in the portfolio.
    price_stale_seconds: float = Field(default=60.0, gt=0)

    # Protections. Trade attempts per caller per minute (past it: 429, nothing written);
    # the default is beyond any person and the benchmark.
    max_orders_per_minute: int = Field(default=6000, ge=1)
    # HALTED by itself when equity falls this share below its value at the start of the
    # UTC day (daily_loss), or below its peak since trading last resumed (drawdown).
    max_daily_loss_share: Decimal = Field(default=Decimal("0.05"), gt=0, le=1)
    max_drawdown_share: Decimal = Field(default=Decimal("0.15"), gt=0, le=1)
    # Equity is measured at every fill and on this timer (the portfolio's prices).
    protection_check_seconds: float = Field(default=30.0, gt=0)
