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

from sqlalchemy import Connection

from execution import statements
from execution.broker import Books, Fill, Refusal, Side, apply_fill
from execution.db import Database
from execution.dialects import dialect_of
from execution.models import accounts, positions
from execution.orders import OrderRecord, order_params
from execution.protections import marks_of
from execution.statements import ACCOUNT_ROW, params, run
from shared.trading import TradingState

# Runs inside the order's transaction, after the order row is written.
Seal = Callable[[Connection, OrderRecord], None]
Planner = Callable[[Books], Fill | Refusal]
# Runs inside a fill's transaction, after its writes: the books before and after it.
AfterFill = Callable[[Connection, Books, Books], None]
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
    trading_state: TradingState = TradingState.ACTIVE
    trading_reason: str = ""

    def quantities(self) -> dict[str, float]:
        """Held quantities of open positions, as Risk's `current_portfolio` wants them."""
        return {s: float(p.quantity) for s, p in self.positions.items() if p.quantity > 0}


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def holdings(self) -> Holdings:
        """The account and every position, as of now (no locks taken)."""
        return await self.db.read_books(_holdings)

    async def record(self, order: OrderRecord, seal: Seal | None = None) -> OrderRecord:
        """Write an order that moves no money (a rejection or a refused attempt)."""
        return await self.db.write(functools.partial(_record, order=order, seal=seal))

    async def fill(
        self,
        draft: OrderRecord,
        plan: Planner,
        seal: Seal | None = None,
        after_fill: AfterFill | None = None,
    ) -> OrderRecord:
        """Plan `draft`'s fill against the locked books and write it, or write the refusal."""
        body = functools.partial(_fill, draft=draft, plan=plan, seal=seal, after_fill=after_fill)
        return await self.db.write(body)


def _holdings(conn: Connection) -> Holdings:
    # Rows of (symbol, quantity, cost_basis, realized_pnl); the account's carries cash,
    # starting cash and the account's realised P&L in those places.
    account: tuple[Decimal, Decimal, Decimal, str, str] | None = None
    held = {}
    for row in run(conn, statements.HOLDINGS):
        symbol, quantity, cost_basis, realized_pnl, state, why = row[:6]
        if symbol == ACCOUNT_ROW:
            account = (Decimal(quantity), Decimal(cost_basis), Decimal(realized_pnl), state, why)
        else:
            held[symbol] = Position(
                symbol=symbol,
                quantity=Decimal(quantity),
                cost_basis=Decimal(cost_basis),
                realized_pnl=Decimal(realized_pnl),
            )
    if account is None:
        raise LookupError("The ledger has no account row (migrations were not applied)")
    cash, starting_cash, realized, state, why = account
    return Holdings(
        cash=cash,
        realized_pnl=realized,
        starting_cash=starting_cash,
        positions=held,
        trading_state=TradingState(state),
        trading_reason=why,
    )


def _record(conn: Connection, *, order: OrderRecord, seal: Seal | None) -> OrderRecord:
    run(conn, statements.INSERT_ORDER, order_params(order))
    if seal is not None:
        seal(conn, order)
    return order


def _fill(
    conn: Connection,
    *,
    draft: OrderRecord,
    plan: Planner,
    seal: Seal | None,
    after_fill: AfterFill | None,
) -> OrderRecord:
    books, held = _locked_books(conn, draft.symbol)
    outcome = plan(books)
    if isinstance(outcome, Refusal):
        return _record(
            conn, order=replace(draft, status="REJECTED", reason=outcome.reason), seal=seal
        )
    order = replace(
        draft,
        status="FILLED",
        filled_amount=outcome.filled_amount,
        quantity=outcome.quantity,
        price=outcome.price,
        fee=outcome.fee,
        reason=f"{draft.reason}; {outcome.clamped}" if outcome.clamped else draft.reason,
    )
    side: Side = "buy" if draft.side == "buy" else "sell"
    after = apply_fill(side, outcome, books)
    now = datetime.now(UTC)
    values = order_params(order)
    values |= params(accounts, {"cash": after.cash, "realized_pnl": after.realized_pnl})
    values |= params(
        positions,
        {
            "symbol": draft.symbol,
            "quantity": after.quantity,
            "cost_basis": after.cost_basis,
            "realized_pnl": after.symbol_realized_pnl,
            "updated_at": now,
        },
    )
    values["accounts_updated_at"] = now
    # Every position write holds the account lock, so no one else can insert this row.
    dialect_of(conn).write_fill(conn, values, held)
    if seal is not None:
        seal(conn, order)
    if after_fill is not None:
        after_fill(conn, books, after)
    return order


def _locked_books(conn: Connection, symbol: str) -> tuple[Books, bool]:
    """The account and every position read under the account's write lock; and whether
    `symbol`'s position row exists."""
    (cash, realized_pnl, state, why, *marks), rows = dialect_of(conn).locked_books(conn)
    held = {row[0]: (Decimal(row[1]), Decimal(row[2])) for row in rows}
    position = next((row for row in rows if row[0] == symbol), None)
    if position is None:
        position = (symbol, _ZERO, _ZERO, _ZERO)
    books = Books(
        cash=Decimal(cash),
        realized_pnl=Decimal(realized_pnl),
        quantity=Decimal(position[1]),
        cost_basis=Decimal(position[2]),
        symbol_realized_pnl=Decimal(position[3]),
        trading_state=TradingState(state),
        trading_reason=why,
        held=held,
        marks=marks_of(*marks),
    )
    return books, symbol in held
