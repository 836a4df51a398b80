"""The ledger: the account, positions and orders, read and written in short transactions.

A fill is one transaction: lock the account row (`FOR UPDATE` on PostgreSQL; SQLite's
`BEGIN IMMEDIATE` already holds the write lock), read the traded position, let the
broker plan against those locked books, write balances, position and order, then
`seal` (which stores the idempotent answer) before the commit. Either all of it is
durable or none of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, literal, select, union_all

from execution.broker import Books, Fill, Refusal, Side, apply_fill
from execution.db import Database
from execution.migrate import ACCOUNT_ID
from execution.models import accounts, positions
from execution.orders import OrderRecord, insert_order

# Runs inside the order's transaction, after the order row is written.
Seal = Callable[[Connection, OrderRecord], None]
Planner = Callable[[Books], Fill | Refusal]
# The account's row in the holdings query; symbols match BASE-QUOTE, so never this.
_ACCOUNT = "$account"
_ZERO = Decimal(0)


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
        return await self.db.read(_holdings)

    async def record(self, order: OrderRecord, seal: Seal | None = None) -> OrderRecord:
        """Write an order that moves no money (a rejection or a refused attempt)."""
        return await self.db.write(functools.partial(_record, order=order, seal=seal))

    async def fill(
        self, draft: OrderRecord, plan: Planner, seal: Seal | None = None
    ) -> OrderRecord:
        """Plan `draft`'s fill against the locked books and write it, or write the refusal."""
        return await self.db.write(functools.partial(_fill, draft=draft, plan=plan, seal=seal))


def _holdings(conn: Connection) -> Holdings:
    # One statement, so the cash and the positions are one snapshot even in autocommit.
    query = union_all(
        select(
            literal(_ACCOUNT).label("symbol"),
            accounts.c.cash.label("quantity"),
            accounts.c.starting_cash.label("cost_basis"),
            accounts.c.realized_pnl,
        ),
        select(
            positions.c.symbol,
            positions.c.quantity,
            positions.c.cost_basis,
            positions.c.realized_pnl,
        ),
    )
    rows = conn.execute(query).all()
    account = next(row for row in rows if row.symbol == _ACCOUNT)
    return Holdings(
        cash=account.quantity,
        realized_pnl=account.realized_pnl,
        starting_cash=account.cost_basis,
        positions={
            row.symbol: Position(
                symbol=row.symbol,
                quantity=row.quantity,
                cost_basis=row.cost_basis,
                realized_pnl=row.realized_pnl,
            )
            for row in rows
            if row.symbol != _ACCOUNT
        },
    )


def _record(conn: Connection, *, order: OrderRecord, seal: Seal | None) -> OrderRecord:
    insert_order(conn, order)
    if seal is not None:
        seal(conn, order)
    return order


def _fill(conn: Connection, *, draft: OrderRecord, plan: Planner, seal: Seal | None) -> OrderRecord:
    side: Side = "buy" if draft.side == "buy" else "sell"
    account = conn.execute(
        select(accounts.c.cash, accounts.c.realized_pnl)
        .where(accounts.c.id == ACCOUNT_ID)
        .with_for_update()
    ).one()
    # Read after the lock is held: on PostgreSQL a statement that waited for the lock
    # would still see the position as of its start (READ COMMITTED re-reads only the
    # locked row), so the position must come from a later statement.
    position = conn.execute(select(positions).where(positions.c.symbol == draft.symbol)).first()
    books = Books(
        cash=account.cash,
        realized_pnl=account.realized_pnl,
        quantity=position.quantity if position else _ZERO,
        cost_basis=position.cost_basis if position else _ZERO,
        symbol_realized_pnl=position.realized_pnl if position else _ZERO,
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
            reason=f"{draft.reason}; {outcome.clamped}" if outcome.clamped else draft.reason,
        )
        _write_books(conn, draft.symbol, apply_fill(side, outcome, books), position)
    return _record(conn, order=order, seal=seal)


def _write_books(conn: Connection, symbol: str, after: Books, position: Row[Any] | None) -> None:
    now = datetime.now(UTC)
    conn.execute(
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
    if position is None:
        conn.execute(positions.insert().values(symbol=symbol, **values))
    else:
        conn.execute(positions.update().where(positions.c.symbol == symbol).values(**values))
