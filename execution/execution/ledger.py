"""The ledger: the account, positions and orders, read and written in short transactions.

A fill is one transaction: lock the account row (`FOR UPDATE` on PostgreSQL; SQLite's
`BEGIN IMMEDIATE` already holds the write lock), read the position, let the broker plan
against those locked books, write balances, position and order, then `seal` (which
stores the idempotent answer) before the commit. Either all of it is durable or none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from execution.broker import Books, Fill, Refusal, Side, apply_fill
from execution.db import Database
from execution.migrate import ACCOUNT_ID
from execution.models import accounts, positions
from execution.orders import OrderRecord, insert_order

# Runs inside the order's transaction, after the order row is written.
Seal = Callable[[AsyncConnection, OrderRecord], Awaitable[None]]
Planner = Callable[[Books], Fill | Refusal]


@dataclass(frozen=True, kw_only=True)
class Position:
    symbol: str
    quantity: Decimal
    cost_basis: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True, kw_only=True)
class Holdings:
    cash: Decimal
    realized_pnl: Decimal
    starting_cash: Decimal
    positions: dict[str, Position]

    def quantities(self) -> dict[str, float]:
        """Held quantities of open positions, as Risk's `current_portfolio` wants them."""
        return {s: float(p.quantity) for s, p in self.positions.items() if p.quantity > 0}


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def holdings(self) -> Holdings:
        """The account and every position, as of now (no locks taken)."""
        async with self.db.engine.connect() as conn:
            account = (await conn.execute(select(accounts))).one()
            rows = (await conn.execute(select(positions))).all()
        return Holdings(
            cash=account.cash,
            realized_pnl=account.realized_pnl,
            starting_cash=account.starting_cash,
            positions={
                row.symbol: Position(
                    symbol=row.symbol,
                    quantity=row.quantity,
                    cost_basis=row.cost_basis,
                    realized_pnl=row.realized_pnl,
                )
                for row in rows
            },
        )

    async def record(self, order: OrderRecord, seal: Seal | None = None) -> OrderRecord:
        """Write an order that moves no money (a rejection or a refused attempt)."""
        async with self.db.writer.begin() as conn:
            await insert_order(conn, order)
            if seal is not None:
                await seal(conn, order)
        return order

    async def fill(
        self, draft: OrderRecord, plan: Planner, seal: Seal | None = None
    ) -> OrderRecord:
        """Plan `draft`'s fill against the locked books and write it, or write the refusal."""
        side: Side = "buy" if draft.side == "buy" else "sell"
        async with self.db.writer.begin() as conn:
            account = (
                await conn.execute(
                    select(accounts).where(accounts.c.id == ACCOUNT_ID).with_for_update()
                )
            ).one()
            row = (
                await conn.execute(select(positions).where(positions.c.symbol == draft.symbol))
            ).first()
            zero = Decimal(0)
            books = Books(
                cash=account.cash,
                realized_pnl=account.realized_pnl,
                quantity=row.quantity if row else zero,
                cost_basis=row.cost_basis if row else zero,
                symbol_realized_pnl=row.realized_pnl if row else zero,
            )
            outcome = plan(books)
            if isinstance(outcome, Refusal):
                order = replace(draft, status="REJECTED", reason=outcome.reason)
            else:
                order = replace(
                    draft,
                    status="FILLED",
                    filled_amount=outcome.filled_amount,
                    quantity=outcome.quantity,
                    price=outcome.price,
                    fee=outcome.fee,
                    reason=_fill_reason(draft.reason, outcome),
                )
                await self._write_books(conn, draft.symbol, apply_fill(side, outcome, books), row)
            await insert_order(conn, order)
            if seal is not None:
                await seal(conn, order)
        return order

    async def _write_books(
        self, conn: AsyncConnection, symbol: str, after: Books, existing: object
    ) -> None:
        now = datetime.now(UTC)
        await conn.execute(
            accounts.update()
            .where(accounts.c.id == ACCOUNT_ID)
            .values(cash=after.cash, realized_pnl=after.realized_pnl, updated_at=now)
        )
        values = {
            "quantity": after.quantity,
            "cost_basis": after.cost_basis,
            "realized_pnl": after.symbol_realized_pnl,
            "updated_at": now,
        }
        # Every position write holds the account lock, so no one else can insert this row.
        if existing is None:
            await conn.execute(positions.insert().values(symbol=symbol, **values))
        else:
            await conn.execute(
                positions.update().where(positions.c.symbol == symbol).values(**values)
            )


def _fill_reason(risk_reason: str, fill: Fill) -> str:
    return f"{risk_reason}; {fill.clamped}" if fill.clamped else risk_reason
