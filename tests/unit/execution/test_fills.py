"""A fill planned against the locked books: the books as both databases' paths read them,
the order and books after a plan, and the halt its measurement trips."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from execution.broker import Books, Refusal
from execution.fills import Job, Settled, books_of, halt_of, settle
from execution.protections import Assessment, Marks
from execution.trading_state import StateChange

from shared.trading import TradingState
from tests.unit.execution.test_pgledger import buy, draft

NOON = datetime(2026, 11, 26, 12, tzinfo=UTC)
HALT = StateChange(
    state=TradingState.HALTED, reason="drawdown", changed_by="protection:drawdown", changed_at=NOON
)
BOOKS = Books(
    cash=Decimal(1000),
    realized_pnl=Decimal(0),
    quantity=Decimal(0),
    cost_basis=Decimal(0),
    symbol_realized_pnl=Decimal(0),
)


def test_books_of_reads_every_position_and_the_marks_in_driver_types() -> None:
    """The limits value every position held (by symbol: quantity, cost basis) and the
    protections measure against the account's marks: both come from the rows as read."""
    account = ("900.5", "12", "ACTIVE", "", "2026-11-26", "1000", "1100")
    rows = [("BTC-USD", "2", "200", "7"), ("ETH-USD", "0.5", "1500", "-3")]
    books = books_of(account, rows, "ETH-USD")
    assert books.held == {
        "BTC-USD": (Decimal(2), Decimal(200)),
        "ETH-USD": (Decimal("0.5"), Decimal(1500)),
    }
    assert books.marks == Marks("2026-11-26", Decimal(1000), Decimal(1100))
    assert (books.cash, books.realized_pnl) == (Decimal("900.5"), Decimal(12))
    assert (books.quantity, books.cost_basis, books.symbol_realized_pnl) == (
        Decimal("0.5"),
        Decimal(1500),
        Decimal(-3),
    )


def test_a_refused_plan_is_written_rejected_whatever_the_draft_said() -> None:
    """A refusal moves no money and the order says so: REJECTED with the refusal's reason,
    even for a draft that was not drafted REJECTED."""
    job = Job(draft=replace(draft(), status="FILLED"), plan=lambda books: Refusal(reason="no"))
    settled = settle(job, BOOKS)
    assert (settled.order.status, settled.order.reason) == ("REJECTED", "no")
    assert settled.after is None


def test_a_job_without_a_plan_is_written_as_drafted_whatever_the_books() -> None:
    """A rejection or refused attempt (no plan) moves no money even where books were read."""
    job = Job(draft=draft())
    assert settle(job, BOOKS) == Settled(job.draft)


def test_the_fills_measurement_is_made_on_the_books_before_and_after_it() -> None:
    """The protections see the fill: `measure` gets the books before and after, and what it
    found goes to the ledger with the fill."""
    seen: list[tuple[Books, Books]] = []
    found = Assessment(Marks("2026-11-26", Decimal(1000), Decimal(1000)), HALT)

    def measure(before: Books, after: Books) -> Assessment:
        seen.append((before, after))
        return found

    settled = settle(Job(draft=draft(), plan=buy(400), measure=measure), BOOKS)
    assert settled.assessment is found
    assert settled.after is not None
    assert seen == [(BOOKS, settled.after)]
    assert settled.after.cash == Decimal(600)


@pytest.mark.parametrize(
    ("state", "halts"),
    [(TradingState.ACTIVE, True), (TradingState.REDUCING, True), (TradingState.HALTED, False)],
)
def test_a_fills_tripped_protection_halts_unless_halted_already(
    state: TradingState, halts: bool
) -> None:
    """The halt a fill's measurement calls for is written once: not again on books that
    were halted already, and none without a measurement."""
    books = replace(BOOKS, trading_state=state)
    settled = Settled(draft(), BOOKS, Assessment(Marks(), HALT))
    assert halt_of(settled, books) == (HALT if halts else None)
    assert halt_of(replace(settled, assessment=None), books) is None
