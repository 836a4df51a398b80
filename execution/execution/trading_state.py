"""The trading state (kill switch), kept on the ledger's account row with its history.

A change updates the account row (the lock every fill takes) and appends to the history
in one transaction, so a fill sees either the old state or the new one, never a trade
half-way through a halt. A restart, a crash or a second replica reads the state last set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from execution.db import Database
from execution.models import ACCOUNT_ID, accounts, trading_state_changes
from shared.errors import ConflictError
from shared.trading import TradingState


@dataclass(frozen=True, kw_only=True)
class StateChange:
    state: TradingState
    reason: str
    changed_by: str
    changed_at: datetime


class TradingRefusedError(ConflictError):
    """A trade the trading state does not allow: 409, the order recorded as REJECTED."""

    title = "Trading Not Allowed"
    type = "/problems/trading-state"

    def __init__(self, state: TradingState, reason: str, order_id: str) -> None:
        what = "every trade" if state is TradingState.HALTED else "trades that grow a position"
        super().__init__(
            f"Trading is {state.value} ({reason}): {what} is refused; no trade was made",
            extra={"trading_state": state.value, "state_reason": reason, "order_id": order_id},
        )


def refusal(state: TradingState, reason: str) -> str:
    """The REJECTED order's reason when the trading state refuses it."""
    return f"Trading is {state.value}: {reason}"


class TradingStateStore:
    def __init__(
        self, db: Database, *, on_change: Callable[[StateChange], None] = lambda change: None
    ) -> None:
        self.db = db
        self.on_change = on_change  # told of every change made here (the live events)

    async def current(self) -> StateChange:
        """The state in force now."""
        return await self.db.read(_current)

    async def change(self, state: TradingState, reason: str, changed_by: str) -> StateChange:
        """Set the state (recorded in the history even when it is unchanged)."""
        change = StateChange(
            state=state, reason=reason, changed_by=changed_by, changed_at=datetime.now(UTC)
        )
        await self.db.write(functools.partial(write_change, change=change))
        self.on_change(change)
        return change

    async def history(self, limit: int) -> list[StateChange]:
        """Every change, newest first, at most `limit`."""
        return await self.db.read(functools.partial(_history, limit=limit))


def write_change(conn: Connection, *, change: StateChange) -> None:
    """Record `change` in the transaction of `conn` (a fill's, for a tripped protection)."""
    values: dict[str, Any] = {
        "trading_state": change.state.value,
        "trading_reason": change.reason,
        "trading_changed_by": change.changed_by,
        "trading_changed_at": change.changed_at,
    }
    if change.state is not TradingState.HALTED:
        # Resuming accepts the losses so far: the protections measure from here on.
        values |= {"day_start_equity": None, "day_start": None, "peak_equity": None}
    conn.execute(accounts.update().where(accounts.c.id == ACCOUNT_ID).values(values))
    conn.execute(
        trading_state_changes.insert().values(
            state=change.state.value,
            reason=change.reason,
            changed_by=change.changed_by,
            changed_at=change.changed_at,
        )
    )


def _current(conn: Connection) -> StateChange:
    row = conn.execute(
        select(
            accounts.c.trading_state,
            accounts.c.trading_reason,
            accounts.c.trading_changed_by,
            accounts.c.trading_changed_at,
            accounts.c.created_at,
        ).where(accounts.c.id == ACCOUNT_ID)
    ).one()
    return StateChange(
        state=TradingState(row.trading_state),
        reason=row.trading_reason,
        changed_by=row.trading_changed_by,
        changed_at=row.trading_changed_at or row.created_at,
    )


def _history(conn: Connection, *, limit: int) -> list[StateChange]:
    t = trading_state_changes
    rows = conn.execute(
        select(t.c.state, t.c.reason, t.c.changed_by, t.c.changed_at)
        .order_by(t.c.seq.desc())
        .limit(limit)
    ).all()
    return [
        StateChange(
            state=TradingState(r.state),
            reason=r.reason,
            changed_by=r.changed_by,
            changed_at=r.changed_at,
        )
        for r in rows
    ]
