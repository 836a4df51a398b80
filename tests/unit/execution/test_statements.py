"""The hot path's statements run on the driver store exactly what SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from execution.config import Settings
from execution.db import open_database
from execution.migrate import migrate
from execution.models import accounts, orders
from execution.orders import OrderRecord, order_params
from sqlalchemy import select

from execution import statements

# 18 decimal places: a float on the way would change the last digits.
EXACT = Decimal("9990.009990000000001942")
MOMENT = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


async def test_driver_writes_read_back_exactly_through_sqlalchemy(database_url: str) -> None:
    """Money keeps all 18 places, times their microseconds and zone, JSON its content."""
    db = open_database(Settings(database_url=database_url))
    order = OrderRecord(
        order_id="o-1",
        symbol="BTC-USD",
        side="buy",
        status="FILLED",
        requested_amount=EXACT,
        filled_amount=EXACT,
        quantity=Decimal("0.000000000001"),
        price=None,
        fee=Decimal("0.123456789012345678"),
        reason="r",
        risk={"approved": True, "price": 1.5},
        trace_id=None,
        idempotency_key=None,
        created_at=MOMENT,
    )
    values = order_params(order) | statements.params(
        accounts, {"cash": EXACT, "realized_pnl": Decimal("-1.5"), "updated_at": MOMENT}
    )
    try:
        await migrate(db, starting_cash=Decimal(10_000))
        await db.write(lambda conn: statements.run(conn, statements.WRITE_ACCOUNT, values))
        await db.write(lambda conn: statements.run(conn, statements.INSERT_ORDER, values))
        account = await db.read(lambda conn: conn.execute(select(accounts)).one())
        row = await db.read(lambda conn: conn.execute(select(orders)).one())
        held = await db.read(lambda conn: statements.run(conn, statements.HOLDINGS))
    finally:
        await db.dispose()
    assert (account.cash, account.realized_pnl, account.updated_at) == (
        EXACT,
        Decimal("-1.5"),
        MOMENT,
    )
    assert OrderRecord(**{n: getattr(row, n) for n in OrderRecord.__dataclass_fields__}) == order
    assert [Decimal(v) for v in held[0][1:4]] == [EXACT, Decimal(10_000), Decimal("-1.5")]
    assert tuple(held[0][4:6]) == ("ACTIVE", "New ledger")
