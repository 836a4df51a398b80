"""PostgreSQL's writer runs the orders queued meanwhile in one transaction, each failing alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from execution.broker import Books, Costs, Fill, Refusal, plan_fill
from execution.config import Settings
from execution.db import PostgresDatabase, open_database
from execution.fills import Seal
from execution.idempotency import Claim, IdempotencyStore, KeyLostError
from execution.ledger import Ledger
from execution.migrate import migrate
from execution.models import idempotency_keys, orders
from execution.orders import OrderRecord
from sqlalchemy import select, update

from tests.unit.execution.conftest import fresh_database

COSTS = Costs(slippage_bps=Decimal(0), fee_bps=Decimal(0), min_order_amount=Decimal(1))


class BoomError(Exception):
    pass


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    async with fresh_database("postgresql", tmp_path) as url:
        db = open_database(Settings(database_url=url))
        assert isinstance(db, PostgresDatabase)
        await migrate(db, starting_cash=Decimal(1000))
        yield Ledger(db)
        await db.dispose()


def draft(symbol: str = "BTC-USD", side: str = "buy", key: str | None = None) -> OrderRecord:
    return OrderRecord(
        order_id=str(uuid.uuid4()),
        symbol=symbol,
        side=side,
        status="REJECTED",
        requested_amount=Decimal(400),
        filled_amount=Decimal(0),
        quantity=Decimal(0),
        price=None,
        fee=Decimal(0),
        reason="Approved",
        risk={"approved": True},
        trace_id=None,
        idempotency_key=key,
        created_at=datetime.now(UTC),
    )


def buy(amount: int) -> Callable[[Books], Fill | Refusal]:
    def plan(books: Books) -> Fill | Refusal:
        return plan_fill("buy", Decimal(amount), Decimal(100), books, COSTS)

    return plan


def boom(books: Books) -> Fill | Refusal:
    raise BoomError("planning failed")


async def stored(ledger: Ledger) -> dict[str, tuple[str, Decimal]]:
    query = select(orders.c.order_id, orders.c.status, orders.c.filled_amount)
    rows = await ledger.db.read(lambda conn: conn.execute(query).all())
    return {r.order_id: (r.status, r.filled_amount) for r in rows}


async def test_queued_fills_share_a_transaction_on_the_books_the_earlier_left(
    ledger: Ledger,
) -> None:
    """Three buys of 400 queued together against 1000 cash: the third is clamped to the 200
    the first two left, as if written one at a time."""
    drafts = [draft() for _ in range(3)]
    filled = await asyncio.gather(*(ledger.fill(d, buy(400)) for d in drafts))
    assert [o.filled_amount for o in filled] == [Decimal(400), Decimal(400), Decimal(200)]
    holdings = await ledger.holdings()
    assert holdings.cash == 0
    assert holdings.positions["BTC-USD"].quantity == 10
    assert sorted((await stored(ledger)).values()) == [
        ("FILLED", Decimal(200)),
        ("FILLED", Decimal(400)),
        ("FILLED", Decimal(400)),
    ]


async def test_an_order_whose_planning_raises_fails_alone(ledger: Ledger) -> None:
    """In one batch, the order whose plan raises is not written; the others are."""
    a, bad, b = draft(), draft(), draft()
    results = await asyncio.gather(
        ledger.fill(a, buy(100)),
        ledger.fill(bad, boom),
        ledger.fill(b, buy(100)),
        return_exceptions=True,
    )
    assert isinstance(results[1], BoomError)
    assert set(await stored(ledger)) == {a.order_id, b.order_id}
    assert (await ledger.holdings()).cash == 800


async def test_a_database_error_fails_only_its_order(ledger: Ledger) -> None:
    """An order the database refuses (a symbol too long for its column) fails alone."""
    a, bad, b = draft(), draft(symbol="X" * 40 + "-USD"), draft()
    results = await asyncio.gather(
        ledger.record(a), ledger.record(bad), ledger.record(b), return_exceptions=True
    )
    assert isinstance(results[1], Exception)
    assert set(await stored(ledger)) == {a.order_id, b.order_id}


async def test_a_lost_key_fails_its_order_and_the_others_commit(ledger: Ledger) -> None:
    """A claim taken over meanwhile: its fill is rolled back (KeyLostError); the batch's
    other fills and answers are written."""
    keys = IdempotencyStore(ledger.db, ttl=timedelta(hours=1), lock_seconds=60, wait_seconds=5)
    claimed = [await keys.claim(k, "fp") for k in ("a", "lost", "b")]
    claims = [c for c in claimed if isinstance(c, Claim)]
    assert len(claims) == 3
    lost = update(idempotency_keys).where(idempotency_keys.c.key == "lost").values(owner="x")
    await ledger.db.write(lambda conn: conn.execute(lost))
    drafts = [draft(key=c.key) for c in claims]
    results = await asyncio.gather(
        *(
            ledger.fill(d, buy(100), Seal(c, lambda order: f'"{order.order_id}"'))
            for d, c in zip(drafts, claims, strict=True)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[1], KeyLostError)
    assert set(await stored(ledger)) == {drafts[0].order_id, drafts[2].order_id}
    query = select(idempotency_keys.c.key, idempotency_keys.c.response)
    rows = await ledger.db.read(lambda conn: conn.execute(query).all())
    answers = {row.key: row.response for row in rows}
    assert answers == {
        "a": f'"{drafts[0].order_id}"',
        "lost": None,
        "b": f'"{drafts[2].order_id}"',
    }
    assert (await ledger.holdings()).cash == 800
