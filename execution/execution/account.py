"""The paper account's number and its reset: a fresh account, the old one kept for audit.

A reset deletes nothing a reader could want: the closed account's books (cash, realised
P&L, every position) are written into `account_resets` with the last order placed on
it, so its orders stay listed and are labelled with their account (`OrderBook`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection, delete, func, select

from execution import statements
from execution.db import Database
from execution.ledger import _holdings
from execution.models import (
    ACCOUNT_ID,
    account_resets,
    accounts,
    orders,
    portfolio_points,
    positions,
)
from execution.schemas import ResetAnswer
from shared.market.models import utc_iso

CURRENT_ACCOUNT = select(func.count()).select_from(account_resets)


def current_account(conn: Connection) -> int:
    """The open account's number: 1 the first, one more after each reset."""
    return int(conn.execute(CURRENT_ACCOUNT).scalar_one()) + 1


class Accounts:
    def __init__(
        self,
        db: Database,
        *,
        starting_cash: Decimal,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.starting_cash = starting_cash
        self._now = now

    async def current(self) -> int:
        return await self.db.read(current_account)

    async def reset(self) -> ResetAnswer:
        """Close the account and open a new one with `STARTING_CASH`, in one transaction."""
        return await self.db.write(
            functools.partial(_reset, starting_cash=self.starting_cash, now=self._now())
        )


def _reset(conn: Connection, *, starting_cash: Decimal, now: datetime) -> ResetAnswer:
    if conn.dialect.name == "postgresql":  # trades hold this lock while they fill
        statements.run(conn, statements.LOCK_ACCOUNT)
    held = _holdings(conn)
    closed = current_account(conn)
    last_seq = conn.execute(select(func.coalesce(func.max(orders.c.seq), 0))).scalar_one()
    books = {
        "cash": str(held.cash),
        "realized_pnl": str(held.realized_pnl),
        "starting_cash": str(held.starting_cash),
        "positions": [
            {
                "symbol": p.symbol,
                "quantity": str(p.quantity),
                "cost_basis": str(p.cost_basis),
                "realized_pnl": str(p.realized_pnl),
            }
            for p in held.positions.values()
        ],
    }
    conn.execute(
        account_resets.insert().values(
            account=closed, last_order_seq=last_seq, reset_at=now, books=books
        )
    )
    conn.execute(
        accounts.update()
        .where(accounts.c.id == ACCOUNT_ID)
        .values(
            cash=starting_cash,
            realized_pnl=Decimal(0),
            starting_cash=starting_cash,
            created_at=now,
            updated_at=now,
            # The protections measure the new account from its own start.
            day_start=None,
            day_start_equity=None,
            peak_equity=None,
        )
    )
    conn.execute(delete(positions))
    conn.execute(
        portfolio_points.insert().values(
            account=closed + 1,
            timestamp=now,
            trigger="reset",
            equity=starting_cash,
            cash=starting_cash,
            positions_value=Decimal(0),
            realized_pnl=Decimal(0),
        )
    )
    return ResetAnswer(
        closed_account=closed,
        account=closed + 1,
        starting_cash=float(starting_cash),
        reset_at=utc_iso(now),
    )
