"""Concurrent trades never overdraw cash nor sell more than is held, on either backend."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from execution.config import Settings
from execution.db import open_database
from execution.models import accounts, orders
from sqlalchemy import select

from tests.unit.execution.conftest import StartApp
from tests.unit.execution.stubs import RiskStub


async def ledger_totals(database_url: str) -> tuple[Decimal, Decimal, Decimal, int]:
    """(cash, sum of filled amounts, sum of fees, count of filled orders) read from the tables."""
    db = open_database(Settings(database_url=database_url))
    try:
        cash = await db.read(lambda conn: conn.execute(select(accounts.c.cash)).scalar_one())
        query = select(orders.c.filled_amount, orders.c.fee).where(orders.c.status == "FILLED")
        fills = await db.read(lambda conn: conn.execute(query).all())
    finally:
        await db.dispose()
    return (
        cash,
        sum((row.filled_amount for row in fills), Decimal(0)),
        sum((row.fee for row in fills), Decimal(0)),
        len(fills),
    )


async def test_100_concurrent_buys_never_overdraw(
    start: StartApp, risk: RiskStub, database_url: str
) -> None:
    """100 buys of 150 against 10 000 cash (Risk approving all): cash >= 0, fills within it."""
    async with start(fee_bps=10) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/trade", json={"symbol": "BTC-USD", "side": "buy", "amount": 150}
                )
                for _ in range(100)
            )
        )
    assert {r.status_code for r in responses} == {201}
    statuses = [r.json()["status"] for r in responses]
    assert "REJECTED" in statuses  # the cash ran out for some
    cash, filled, fees, count = await ledger_totals(database_url)
    assert cash >= 0
    assert filled + fees <= 10_000
    assert cash == 10_000 - filled - fees
    assert count == statuses.count("FILLED")
    # Risk saw the books as they were before the fills, so the lock is what saved the cash.
    assert sum(r["amount"] for r in risk.requests) > 10_000


async def test_concurrent_sells_never_sell_more_than_held(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """50 concurrent sells of 100 each against 10 units at 100: never more than 10 sold."""
    await client.post("/api/v1/trade", json={"symbol": "ETH-USD", "side": "buy", "amount": 1000})
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/trade", json={"symbol": "ETH-USD", "side": "sell", "amount": 100})
            for _ in range(50)
        )
    )
    sold = sum(r.json()["quantity"] for r in responses if r.json()["status"] == "FILLED")
    assert sold == 10.0
    portfolio = (await client.get("/api/v1/portfolio")).json()
    assert portfolio["positions"] == []
    assert portfolio["cash"] == 10_000
