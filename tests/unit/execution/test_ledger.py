"""The ledger: holdings as read, and each order's transaction with what rides on it (the
locked books, the Idempotency-Key's answer, the protections' marks and halt)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from execution.broker import Books, Fill, Refusal
from execution.config import Settings
from execution.db import open_database
from execution.fills import Seal
from execution.idempotency import Claim, IdempotencyStore
from execution.ledger import Holdings, Ledger, Position, holdings_of
from execution.migrate import migrate
from execution.models import idempotency_keys, trading_state_changes
from execution.pgledger import PostgresPath
from execution.protections import Assessment, Marks
from execution.trading_state import StateChange, TradingStateStore
from sqlalchemy import event, func, select

from shared.trading import TradingState
from tests.unit.execution.test_pgledger import buy, draft

NOON = datetime(2026, 11, 26, 12, tzinfo=UTC)


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    """A ledger of 1000 cash, once per backend."""
    db = open_database(Settings(database_url=database_url))
    await migrate(db, starting_cash=Decimal(1000))
    yield Ledger(db)
    await db.dispose()


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[Ledger, list[str]]]:
    """A SQLite ledger of 1000 cash, and every SQL statement its connections run."""
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    statements: list[str] = []

    @event.listens_for(db.engine, "connect")  # type: ignore[attr-defined]
    def trace(driver: Any, record: Any) -> None:
        driver.set_trace_callback(statements.append)

    await migrate(db, starting_cash=Decimal(1000))
    statements.clear()
    yield Ledger(db), statements
    await db.dispose()


def position(symbol: str, quantity: str) -> Position:
    q = Decimal(quantity)
    return Position(symbol=symbol, quantity=q, cost_basis=q * 100, realized_pnl=Decimal(0))


def test_risk_is_told_the_open_positions_only() -> None:
    """Risk's `current_portfolio` holds every open position, however small, and no position
    that was sold down to nothing."""
    held = [position("BTC-USD", "0.25"), position("ETH-USD", "3"), position("SOL-USD", "0")]
    holdings = Holdings(
        cash=Decimal(1000),
        realized_pnl=Decimal(0),
        starting_cash=Decimal(1000),
        positions={p.symbol: p for p in held},
    )
    assert holdings.quantities() == {"BTC-USD": 0.25, "ETH-USD": 3.0}


def test_a_ledger_without_its_account_row_says_migrations_were_not_applied() -> None:
    """No account row is an operator's mistake, named as such, not a crash on unpacking."""
    message = r"^The ledger has no account row \(migrations were not applied\)$"
    with pytest.raises(LookupError, match=message):
        holdings_of([("BTC-USD", "1", "100", "0", None, None)])


def test_a_postgres_database_gets_the_batching_path() -> None:
    """On PostgreSQL the trade's transaction is `PostgresPath`'s, on that database (built
    without connecting: the engine is lazy)."""
    db = open_database(Settings(database_url="postgresql://u@127.0.0.1:1/ledger"))
    ledger = Ledger(db)
    assert isinstance(ledger.path, PostgresPath)
    assert ledger.path.db is db
    assert ledger.db is db


async def test_the_plan_sees_every_position_and_not_the_account(ledger: Ledger) -> None:
    """The locked books hold each position by symbol (the limits value them all); the
    account's own row is not one of them."""
    await ledger.fill(draft("BTC-USD"), buy(200))
    seen: list[Books] = []

    def plan(books: Books) -> Fill | Refusal:
        seen.append(books)
        return Refusal(reason="looked only")

    await ledger.fill(draft("ETH-USD"), plan)
    assert seen[0].held == {"BTC-USD": (Decimal(2), Decimal(200))}
    assert seen[0].cash == Decimal(800)


async def claimed(ledger: Ledger, key: str) -> Claim:
    store = IdempotencyStore(ledger.db, ttl=timedelta(hours=1), lock_seconds=60, wait_seconds=5)
    claim = await store.claim(key, "fingerprint")
    assert isinstance(claim, Claim)
    return claim


async def key_row(ledger: Ledger, key: str) -> Any:
    query = select(idempotency_keys).where(idempotency_keys.c.key == key)
    return await ledger.db.read(lambda conn: conn.execute(query).one())


async def test_a_sealed_fill_stores_its_answer_with_the_order(ledger: Ledger) -> None:
    """The key's answer is written in the fill's transaction: the 201, its body, and the
    order it is for."""
    claim = await claimed(ledger, "k")
    order = await ledger.fill(draft(key="k"), buy(100), Seal(claim, lambda o: f'"{o.order_id}"'))
    row = await key_row(ledger, "k")
    assert (row.status_code, row.response, row.order_id) == (
        201,
        f'"{order.order_id}"',
        order.order_id,
    )


async def test_a_seal_with_no_body_stores_no_answer(ledger: Ledger) -> None:
    """A seal whose body is None (the 409 of a halt met under the lock) leaves the key
    unanswered, so a retry runs afresh instead of replaying an empty 201."""
    claim = await claimed(ledger, "k")
    await ledger.fill(draft(key="k"), buy(100), Seal(claim, lambda order: None))
    row = await key_row(ledger, "k")
    assert (row.status_code, row.response, row.order_id) == (None, None, None)


def halting(books: Books, after: Books) -> Assessment:
    halt = StateChange(
        state=TradingState.HALTED, reason="drawdown", changed_by="protection:t", changed_at=NOON
    )
    return Assessment(books.marks, halt)


async def halts(ledger: Ledger) -> int:
    query = select(func.count()).select_from(trading_state_changes)
    return int(await ledger.db.read(lambda conn: conn.execute(query).scalar_one()))


async def test_a_fills_measurement_is_written_with_it(ledger: Ledger) -> None:
    """A protection the fill trips halts trading in the fill's own transaction."""
    await ledger.fill(draft(), buy(100), measure=halting)
    holdings = await ledger.holdings()
    assert (holdings.trading_state, holdings.trading_reason) == (TradingState.HALTED, "drawdown")
    assert await halts(ledger) == 1


async def test_a_fill_on_halted_books_records_no_second_halt(ledger: Ledger) -> None:
    """Halted already (a planner that fills anyway): the ledger adds no halt to the history."""
    store = TradingStateStore(ledger.db)
    await store.change(TradingState.HALTED, "operator", "ops")
    await ledger.fill(draft(), buy(100), measure=halting)
    assert await halts(ledger) == 1
    assert (await ledger.holdings()).trading_reason == "operator"


async def test_an_ordinary_fill_writes_no_marks(traced: tuple[Ledger, list[str]]) -> None:
    """Marks are written only when they move, so an ordinary fill pays no extra statement."""
    ledger, statements = traced
    await ledger.fill(draft(), buy(100), measure=lambda books, after: Assessment(books.marks, None))
    assert (await ledger.holdings()).cash == Decimal(900)
    assert not [s for s in statements if "day_start" in s and s.startswith("UPDATE")]
    moved = Marks("2026-11-26", Decimal(900), Decimal(900))
    await ledger.fill(draft(), buy(100), measure=lambda books, after: Assessment(moved, None))
    assert [s for s in statements if "day_start" in s and s.startswith("UPDATE")]


async def test_a_record_reads_no_books(traced: tuple[Ledger, list[str]]) -> None:
    """A rejection moves no money: its transaction inserts the order and reads nothing."""
    ledger, statements = traced
    await ledger.record(draft())
    assert not [s for s in statements if s.startswith("SELECT")]
    assert [s for s in statements if s.startswith("INSERT INTO orders")]
