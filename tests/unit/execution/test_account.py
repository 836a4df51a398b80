"""The paper account: closed positions keep their P&L; a reset starts afresh, deletes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import httpx
from execution.app import create_app
from execution.config import Settings
from execution.history import History

from shared.market.source import MarketSource
from tests.support.asgi import client_of, serving
from tests.unit.execution.stubs import PRICE, FakeSource, RiskRule, RiskStub, approve_all
from tests.unit.execution.test_history import points_when

BUY = {"symbol": "BTC-USD", "side": "buy", "amount": 1000}


def sell_at(price: float) -> RiskRule:
    return lambda body: approve_all(body) | {"price": price}


async def test_closed_position_keeps_its_realised_pnl(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """A position sold to zero leaves `positions` and is listed in `closed` with its P&L."""
    await client.post("/api/v1/trade", json=BUY)  # 10 BTC at 100
    risk.rule = sell_at(PRICE * 1.1)
    sold = await client.post("/api/v1/trade", json=BUY | {"side": "sell", "amount": 1100})
    assert sold.json()["quantity"] == 10
    body = (await client.get("/api/v1/portfolio")).json()
    assert body["positions"] == []
    assert body["closed"] == [{"symbol": "BTC-USD", "realized_pnl": 100.0}]
    assert body["realized_pnl"] == 100.0
    assert body["account"] == 1


async def test_reset_starts_afresh_and_keeps_old_orders(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """After a reset: starting cash, no positions, no history; old orders listed as account 1."""
    old = (await client.post("/api/v1/trade", json=BUY)).json()
    await points_when(client, lambda p: len(p) == 1)
    response = await client.post("/api/v1/account/reset")
    assert response.status_code == 200
    assert response.json() | {"reset_at": None} == {
        "closed_account": 1,
        "account": 2,
        "starting_cash": 10_000.0,
        "reset_at": None,
    }
    portfolio = (await client.get("/api/v1/portfolio")).json()
    assert (portfolio["account"], portfolio["cash"], portfolio["equity"]) == (2, 10_000.0, 10_000.0)
    assert portfolio["positions"] == portfolio["closed"] == []
    assert portfolio["realized_pnl"] == 0
    history = (await client.get("/api/v1/portfolio/history")).json()
    assert history["account"] == 2
    assert [p["trigger"] for p in history["points"]] == ["reset"]
    assert history["points"][0]["equity"] == 10_000.0

    new = (await client.post("/api/v1/trade", json=BUY | {"amount": 500})).json()
    listed = (await client.get("/api/v1/orders")).json()["orders"]
    assert [(o["order_id"], o["account"]) for o in listed] == [
        (new["order_id"], 2),
        (old["order_id"], 1),
    ]
    looked_up = (await client.get(f"/api/v1/orders/{old['order_id']}")).json()
    assert looked_up["account"] == 1
    assert looked_up["status"] == "FILLED"
    # The new account's books hold only the new trade.
    portfolio = (await client.get("/api/v1/portfolio")).json()
    assert portfolio["cash"] == 9500.0
    assert [p["quantity"] for p in portfolio["positions"]] == [5.0]


async def test_a_second_reset_numbers_on(client: httpx.AsyncClient) -> None:
    """Each reset closes the open account: 1, then 2."""
    first = (await client.post("/api/v1/account/reset")).json()
    second = (await client.post("/api/v1/account/reset")).json()
    assert (first["closed_account"], second["closed_account"], second["account"]) == (1, 2, 3)


async def test_a_fill_from_before_a_reset_adds_no_point_to_the_new_account(
    settings_for: Callable[..., Settings], source: FakeSource, risk: RiskStub
) -> None:
    """A fill made on the closed account never lands in the new account's history."""
    app = create_app(settings_for(), market_source=cast(MarketSource, source))
    async with serving(app) as served, client_of(served.asgi, "http://execution") as client:
        await client.post("/api/v1/account/reset")
        history: History = served.state["history"]
        stale = {"symbol": "BTC-USD", "price": 100.0, "created_at": "2020-01-01T00:00:00+00:00"}
        assert await history.after_fills([stale]) is None
        points = (await client.get("/api/v1/portfolio/history")).json()["points"]
    assert [p["trigger"] for p in points] == ["reset"]
