"""The ledger: the account, positions and orders, read and written in short transactions.

A fill is one transaction: lock the account row, read every position, let the broker
plan against those locked books (`settle`, pure), write balances, position and order,
and the Idempotency-Key's answer (`Seal`) before the commit. Either all of it is durable
or none of it. How the transaction runs is the database's (`LedgerPath`): on SQLite one
transaction per fill on the writer thread (`SqlitePath`, which group-commits them); on
PostgreSQL the fills queued meanwhile share one transaction of four round trips
(`execution.pgledger`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Connection

from execution import statements
from execution.broker import Books
from execution.db import Database, PostgresDatabase
from execution.fills import Job, Measure, Planner, Seal, books_of, fill_values, settle
from execution.idempotency import answer_in
from execution.orders import OrderRecord, order_params
from execution.protections import record_in
from execution.statements import ACCOUNT_ROW, run
from shared.trading import TradingState


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


class LedgerPath(Protocol):
    """The trade's hot path on one database: the books read and the order's transaction."""

    async def books(self) -> Sequence[Sequence[Any]]:
        """The `statements.HOLDINGS` rows, as of now (no locks taken)."""
        ...

    async def write(self, job: Job) -> OrderRecord:
        """Run `job` in a transaction holding the account lock; the order as written."""
        ...


class SqlitePath:
    """One transaction per job on the writer thread, which commits those queued together."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def books(self) -> Sequence[Sequence[Any]]:
        return await self.db.read_books(functools.partial(run, statement=statements.HOLDINGS))

    async def write(self, job: Job) -> OrderRecord:
        return await self.db.write(functools.partial(_write_job, job=job))


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.path: LedgerPath
        if isinstance(db, PostgresDatabase):
            from execution.pgledger import PostgresPath  # it builds on this module

            self.path = PostgresPath(db)
        else:
            self.path = SqlitePath(db)

    async def holdings(self) -> Holdings:
        """The account and every position, as of now (no locks taken)."""
        return holdings_of(await self.path.books())

    async def record(self, order: OrderRecord, seal: Seal | None = None) -> OrderRecord:
        """Write an order that moves no money (a rejection or a refused attempt)."""
        return await self.path.write(Job(draft=order, seal=seal))

    async def fill(
        self,
        draft: OrderRecord,
        plan: Planner,
        seal: Seal | None = None,
        measure: Measure | None = None,
    ) -> OrderRecord:
        """Plan `draft`'s fill against the locked books and write it, or write the refusal."""
        return await self.path.write(Job(draft=draft, plan=plan, seal=seal, measure=measure))


def _holdings(conn: Connection) -> Holdings:
    return holdings_of(run(conn, statements.HOLDINGS))


def holdings_of(rows: Sequence[Sequence[Any]]) -> Holdings:
    """The `statements.HOLDINGS` rows as holdings."""
    # Rows of (symbol, quantity, cost_basis, realized_pnl); the account's carries cash,
    # starting cash and the account's realised P&L in those places.
    account: tuple[Decimal, Decimal, Decimal, str, str] | None = None
    held = {}
    for row in rows:
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


def _write_job(conn: Connection, *, job: Job) -> OrderRecord:
    """`job` in one transaction on SQLite, whose `BEGIN IMMEDIATE` holds the write lock."""
    books, held = (None, False) if job.plan is None else _locked_books(conn, job.draft.symbol)
    settled = settle(job, books)
    if settled.after is None:
        run(conn, statements.INSERT_ORDER, order_params(settled.order))
    else:
        assert books is not None
        values = fill_values(settled, datetime.now(UTC))
        # Every position write holds the account lock, so no one else can insert this row.
        run(conn, statements.WRITE_ACCOUNT, values)
        run(conn, statements.UPDATE_POSITION if held else statements.INSERT_POSITION, values)
        run(conn, statements.INSERT_ORDER, values)
        if settled.assessment is not None:
            record_in(conn, settled.assessment, marks=books.marks, state=books.trading_state)
    if job.seal is not None and settled.answer is not None:
        answer_in(conn, job.seal.claim, 201, settled.answer, settled.order.order_id)
    return settled.order


def _locked_books(conn: Connection, symbol: str) -> tuple[Books, bool]:
    """The account and every position (BEGIN IMMEDIATE took the database's write lock,
    so one statement reads it all); and whether `symbol`'s position row exists."""
    rows = run(conn, statements.BOOKS)
    _, cash, _, realized_pnl, *rest = next(r for r in rows if r[0] == ACCOUNT_ROW)
    positions = [r for r in rows if r[0] != ACCOUNT_ROW]
    return books_of((cash, realized_pnl, *rest), positions, symbol), any(
        r[0] == symbol for r in positions
    )
