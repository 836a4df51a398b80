"""A trade's fill planned against the locked books, as pure functions: what both
databases' paths run inside the transaction that holds the account lock
(`ledger.SqlitePath` one order at a time, `pgledger.PostgresPath` a batch in turn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from execution.broker import Books, Fill, Refusal, Side, apply_fill
from execution.idempotency import Claim
from execution.models import accounts, positions
from execution.orders import OrderRecord, order_params
from execution.protections import Assessment, marks_of, tripped
from execution.statements import params
from execution.trading_state import StateChange
from shared.trading import TradingState

Planner = Callable[[Books], Fill | Refusal]
# The protections' measurement at a fill: the books before and after it.
Measure = Callable[[Books, Books], Assessment]
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Seal:
    """Store the order's answer under an Idempotency-Key, in the order's transaction; if
    the claim was lost meanwhile, write nothing and raise `KeyLostError`."""

    claim: Claim
    # The 201 body to store for the order as written; None stores nothing.
    body: Callable[[OrderRecord], str | None]


@dataclass(frozen=True, kw_only=True)
class Job:
    """One order to write: planned against the locked books if `plan` is set, else as is."""

    draft: OrderRecord
    plan: Planner | None = None
    seal: Seal | None = None
    measure: Measure | None = None


@dataclass(frozen=True)
class Settled:
    """A job planned against the books: the order, and for a fill the books after it and
    what the protections found."""

    order: OrderRecord
    after: Books | None = None
    assessment: Assessment | None = None
    answer: str | None = None  # the body to store under the job's key


def settle(job: Job, books: Books | None) -> Settled:
    """Plan `job` against the locked `books` (None for a job that moves no money): the
    order to write, the books after a fill and what the protections found. Pure."""
    draft = job.draft
    if job.plan is None or books is None:
        return _sealed(job, Settled(draft))
    outcome = job.plan(books)
    if isinstance(outcome, Refusal):
        return _sealed(job, Settled(replace(draft, status="REJECTED", reason=outcome.reason)))
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
    found = None if job.measure is None else job.measure(books, after)
    return _sealed(job, Settled(order, after, found))


def _sealed(job: Job, settled: Settled) -> Settled:
    if job.seal is None:
        return settled
    return replace(settled, answer=job.seal.body(settled.order))


def fill_values(settled: Settled, now: datetime) -> dict[str, Any]:
    """A fill's order, balances and position as the statements' parameters."""
    after, order = settled.after, settled.order
    assert after is not None
    values = order_params(order)
    values |= params(accounts, {"cash": after.cash, "realized_pnl": after.realized_pnl})
    values |= params(
        positions,
        {
            "symbol": order.symbol,
            "quantity": after.quantity,
            "cost_basis": after.cost_basis,
            "realized_pnl": after.symbol_realized_pnl,
            "updated_at": now,
        },
    )
    values["accounts_updated_at"] = now
    return values


def halt_of(settled: Settled, books: Books) -> StateChange | None:
    """The halt a fill's measurement trips on `books` (not if halted already)."""
    if settled.assessment is None:
        return None
    return tripped(settled.assessment, books.trading_state)


def books_of(account: Sequence[Any], rows: Sequence[Sequence[Any]], symbol: str) -> Books:
    """The books for a trade of `symbol`: the account's (cash, realized_pnl, trading
    state, its reason, the protections' marks) and every position's (symbol, quantity,
    cost basis, realized P&L), in the driver's types."""
    cash, realized_pnl, state, why, *marks = account
    held = {row[0]: (Decimal(row[1]), Decimal(row[2])) for row in rows}
    position = next((row for row in rows if row[0] == symbol), None)
    if position is None:
        position = (symbol, _ZERO, _ZERO, _ZERO)
    return Books(
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
