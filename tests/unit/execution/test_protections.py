"""Protections: the daily-loss and drawdown halts, and MAX_ORDERS_PER_MINUTE."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from execution.config import Settings
from execution.db import open_database
from execution.migrate import migrate
from execution.protections import Marks, ProtectionLimits, Protections, assess
from execution.ratelimit import OrderRateLimiter, TooManyOrdersError

from shared.auth import API_KEY_HEADER, Role
from tests.support.keys import headers
from tests.support.servers import ThreadServer
from tests.unit.execution.conftest import StartApp, fresh_database
from tests.unit.execution.stubs import GatewayStub, RiskStub
from tests.unit.shared.fakes import FakeClock

LIMITS = ProtectionLimits(daily_loss_share=Decimal("0.05"), drawdown_share=Decimal("0.15"))
NOON = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_the_first_measurement_opens_the_day_and_the_peak() -> None:
    """With no marks, the equity before the fill is the day's start and the peak."""
    found = assess(Marks(), before=Decimal(1000), after=Decimal(990), now=NOON, limits=LIMITS)
    assert found.marks == Marks("2026-11-26", Decimal(1000), Decimal(1000))
    assert found.trip is None


def test_a_daily_loss_past_the_share_halts_with_the_figures() -> None:
    """Equity more than MAX_DAILY_LOSS_SHARE below the day's start: HALTED, daily_loss."""
    marks = Marks("2026-11-26", Decimal(1000), Decimal(1000))
    found = assess(marks, before=Decimal(960), after=Decimal(949), now=NOON, limits=LIMITS)
    assert found.trip is not None
    assert found.trip.changed_by == "protection:daily_loss"
    assert found.trip.state == "HALTED"
    assert "949.00" in found.trip.reason
    assert "1,000.00" in found.trip.reason
    at_limit = assess(marks, before=Decimal(960), after=Decimal(950), now=NOON, limits=LIMITS)
    assert at_limit.trip is None


def test_a_new_utc_day_starts_from_the_equity_then() -> None:
    """Yesterday's loss does not count today: the day's start moves at UTC midnight."""
    marks = Marks("2026-11-25", Decimal(1000), Decimal(1000))
    found = assess(marks, before=Decimal(940), after=Decimal(939), now=NOON, limits=LIMITS)
    assert found.marks.day_start_equity == Decimal(940)
    assert found.trip is None


def test_a_drawdown_from_the_peak_halts() -> None:
    """Equity more than MAX_DRAWDOWN_SHARE below its peak: HALTED by protection:drawdown."""
    marks = Marks("2026-11-26", Decimal(800), Decimal(1000))
    found = assess(marks, before=Decimal(849), after=Decimal(849), now=NOON, limits=LIMITS)
    assert found.trip is not None
    assert found.trip.changed_by == "protection:drawdown"
    rising = assess(marks, before=Decimal(1100), after=Decimal(1100), now=NOON, limits=LIMITS)
    assert rising.marks.peak_equity == Decimal(1100)
    assert rising.trip is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_timer_halts_once_and_it_sticks(backend: str, tmp_path: Path) -> None:
    """The timer's measurement trips the drawdown on the ledger; a later one adds no change."""
    async with fresh_database(backend, tmp_path) as url:
        db = open_database(Settings(database_url=url))
        try:
            await migrate(db, starting_cash=Decimal(10_000))
            protections = Protections(db, LIMITS, clock=lambda: NOON)
            assert await protections.check(Decimal(10_000)) is None
            halt = await protections.check(Decimal(8_000))
            assert halt is not None
            assert halt.changed_by == "protection:daily_loss"
            assert await protections.check(Decimal(7_000)) is None  # already HALTED
        finally:
            await db.dispose()


async def trade(
    client: httpx.AsyncClient, side: str, amount: float, key: dict[str, str] | None = None
) -> httpx.Response:
    body = {"symbol": "DOGE-USD", "side": side, "amount": amount}
    return await client.post("/api/v1/trade", json=body, headers=key)


async def test_a_buy_and_a_sell_trip_the_daily_loss(
    start: StartApp, real_risk: ThreadServer, priced: GatewayStub
) -> None:
    """MAX_DAILY_LOSS_SHARE=0.0001: fees and slippage of one round trip halt trading."""
    settings = {"max_daily_loss_share": "0.0001", "fee_bps": 10, "slippage_bps": 5}
    async with start(risk_url=real_risk.url, **settings) as client:
        bought = (await trade(client, "buy", 500)).json()  # loses 0.75 of 10,000
        assert bought["status"] == "FILLED", bought["reason"]
        assert bought["status"] == "FILLED"
        assert (await client.get("/api/v1/trading-state")).json()["state"] == "ACTIVE"
        sold = (await trade(client, "sell", bought["filled_amount"])).json()
        assert sold["status"] == "FILLED"
        state = (await client.get("/api/v1/trading-state")).json()
        assert state["state"] == "HALTED"
        assert state["changed_by"] == "protection:daily_loss"
        assert "below" in state["reason"]
        refused = await trade(client, "buy", 100)
        assert refused.status_code == 409
    async with start(risk_url=real_risk.url, **settings) as client:  # sticky across restarts
        assert (await trade(client, "buy", 100)).status_code == 409
        change = {"state": "ACTIVE", "reason": "loss accepted"}
        assert (await client.put("/api/v1/trading-state", json=change)).status_code == 200
        assert (await trade(client, "buy", 100)).json()["status"] == "FILLED"


def test_the_window_slides() -> None:
    """Past the limit within 60 s: refused with the wait; once the oldest ages out, admitted."""
    clock = FakeClock(0.0)
    limiter = OrderRateLimiter(2, clock=clock)
    limiter.admit("a")
    clock.advance(10)
    limiter.admit("a")
    limiter.admit("b")  # per caller
    with pytest.raises(TooManyOrdersError) as refused:
        limiter.admit("a")
    assert refused.value.headers == {"Retry-After": "50"}
    clock.advance(50)
    limiter.admit("a")


async def test_the_sixth_trade_in_a_minute_is_a_429_that_writes_nothing(
    start: StartApp, risk: RiskStub
) -> None:
    """MAX_ORDERS_PER_MINUTE=5: the 6th attempt is a 429 with Retry-After; no order is kept."""
    async with start(max_orders_per_minute=5) as client:
        for _ in range(5):
            assert (await trade(client, "buy", 10)).status_code == 201
        refused = await trade(client, "buy", 10)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) >= 1
        orders = (await client.get("/api/v1/orders")).json()["orders"]
    assert len(orders) == 5
    assert len(risk.requests) == 5


async def test_the_order_rate_is_per_key_and_refused_keys_spend_none_of_it(
    start: StartApp, risk: RiskStub
) -> None:
    """MAX_ORDERS_PER_MINUTE=2 per trader key; a bad key (401) or a viewer's (403) is
    refused before it counts, and a second trader key has its own budget."""
    first, second = headers(Role.TRADER, 0), headers(Role.TRADER, 1)
    async with start(max_orders_per_minute=2) as client:
        for _ in range(3):
            assert (await trade(client, "buy", 10, {API_KEY_HEADER: "nope"})).status_code == 401
            assert (await trade(client, "buy", 10, headers(Role.VIEWER))).status_code == 403
        assert [(await trade(client, "buy", 10, first)).status_code for _ in range(3)] == [
            201,
            201,
            429,
        ]
        assert (await trade(client, "buy", 10, second)).status_code == 201
    assert len(risk.requests) == 3
