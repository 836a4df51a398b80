"""The ledger's tables. Money and quantities are exact decimals, never binary floats.

PostgreSQL stores them as NUMERIC(38, 18); SQLite, which has no decimal type, as their
exact decimal text. Times are timezone-aware UTC on both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine


class Money(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC(38, 18) on PostgreSQL, decimal text on SQLite."""

    impl = Numeric(38, 18)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A UTC timestamp that reads back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData()

# The single paper account; its row is the ledger's mutex for every balance change.
# The ledger's one account (a paper-trading ledger of one trader).
ACCOUNT_ID = 1

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("cash", Money, nullable=False),
    Column("realized_pnl", Money, nullable=False),
    Column("starting_cash", Money, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The trading state (kill switch): on this row, so fills and changes are ordered.
    Column("trading_state", String(16), nullable=False, server_default="ACTIVE"),
    Column("trading_reason", Text, nullable=False, server_default="New ledger"),
    Column("trading_changed_by", String(64), nullable=False, server_default="system"),
    Column("trading_changed_at", UtcDateTime, nullable=True),
    # The protections' reference points: equity at the start of the UTC day (`day_start`,
    # YYYY-MM-DD) and the peak equity since trading last resumed.
    Column("day_start_equity", Money, nullable=True),
    Column("day_start", String(10), nullable=True),
    Column("peak_equity", Money, nullable=True),
)

# `cost_basis` is what the held quantity cost, buy fees included (average cost x quantity).
positions = Table(
    "positions",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("quantity", Money, nullable=False),
    Column("cost_basis", Money, nullable=False),
    Column("realized_pnl", Money, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Every trade attempt, filled or not; `seq` orders them and backs the list's cursor.
orders = Table(
    "orders",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("order_id", String(36), nullable=False, unique=True),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_amount", Money, nullable=False),
    Column("filled_amount", Money, nullable=False),
    Column("quantity", Money, nullable=False),
    Column("price", Money, nullable=True),
    Column("fee", Money, nullable=False),
    Column("reason", Text, nullable=False),
    Column("risk", JSON, nullable=True),
    Column("trace_id", String(64), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# One row per reset of the paper account: orders up to `last_order_seq` belong to account
# `account` (1 the first); the old account's books are kept in `books` (nothing deleted).
account_resets = Table(
    "account_resets",
    metadata,
    Column("account", Integer, primary_key=True, autoincrement=False),
    Column("last_order_seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("reset_at", UtcDateTime, nullable=False),
    Column("books", JSON, nullable=False),
)

# The equity curve: a point after fills and on a timer, for the account opened at `account`.
portfolio_points = Table(
    "portfolio_points",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("account", Integer, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("trigger", String(8), nullable=False),
    Column("equity", Money, nullable=False),
    Column("cash", Money, nullable=False),
    Column("positions_value", Money, nullable=False),
    Column("realized_pnl", Money, nullable=False),
    Index("ix_portfolio_points_account_timestamp", "account", "timestamp"),
)

# One row per Idempotency-Key: in flight while `status_code` is null, then the stored answer.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("owner", String(36), nullable=False),
    Column("locked_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", Text, nullable=True),
    Column("order_id", String(36), nullable=True),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

# Every change of the trading state: who, when and why (the account row holds the latest).
trading_state_changes = Table(
    "trading_state_changes",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
)
