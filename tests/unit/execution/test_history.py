"""The portfolio's history: points after fills and on the timer, kept in the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import httpx
from execution.app import create_app
from execution.config import Settings
from execution.history import History

from shared.market.source import MarketSource
from tests.support.asgi import client_of, serving
from tests.unit.execution.conftest import running
from tests.unit.execution.stubs import FakeSource, GatewayStub, RiskStub, approve_all

TRADE = {"symbol": "BTC-USD", "side": "buy", "amount": 1000}


async def points_when(
    client: httpx.AsyncClient, ready: Callable[[list[Any]], bool], timeout: float = 5.0
) -> list[Any]:
    """The history's points, oldest first, once `ready` says so (polled with a deadline)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        points = (await client.get("/api/v1/portfolio/history")).json()["points"][::-1]
        if ready(points) or asyncio.get_running_loop().time() > deadline:
            return cast(list[Any], points)
        await asyncio.sleep(0.01)


async def test_a_point_follows_every_fill(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """Each fill is followed by a point with the cash and realised P&L it left."""
    await client.post("/api/v1/trade", json=TRADE)
    points = await points_when(client, lambda p: len(p) == 1)
    assert [(p["trigger"], p["cash"]) for p in points] == [("fill", 9000.0)]
    assert points[0]["positions_value"] == 1000.0  # 10 BTC at the fill's price, 100
    assert points[0]["equity"] == 10_000.0
    await client.post("/api/v1/trade", json=TRADE | {"side": "sell", "amount": 400})
    points = await points_when(client, lambda p: len(p) == 2)
    assert [(p["trigger"], p["cash"]) for p in points] == [("fill", 9000.0), ("fill", 9400.0)]
    assert points[1]["positions_value"] == 600.0
    assert points[1]["realized_pnl"] == 0.0


async def test_a_rejection_makes_no_point(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """Only fills move the books, so only fills add points."""
    risk.rule = lambda body: (
        approve_all(body) | {"approved": False, "max_amount": 0, "reason": "No"}
    )
    await client.post("/api/v1/trade", json=TRADE)
    risk.reset()
    await client.post("/api/v1/trade", json=TRADE)
    points = await points_when(client, lambda p: len(p) >= 1)
    assert [p["trigger"] for p in points] == ["fill"]


async def test_timer_point_values_at_market_with_the_clock_injected(
    settings_for: Callable[..., Settings], risk: RiskStub, gateway: GatewayStub
) -> None:
    """The timer's point values positions at the market price, stamped by the clock."""
    app = create_app(
        settings_for(portfolio_history_seconds=0),
        market_source=cast(MarketSource, FakeSource()),
    )
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    gateway.prices["BTC-USD"] = (125.0, datetime.now(UTC))
    async with serving(app) as served, client_of(served.asgi, "http://execution") as client:
        await client.post("/api/v1/trade", json=TRADE)
        await points_when(client, lambda p: len(p) == 1)
        history: History = served.state["history"]
        history._now = lambda: at
        point = await history.on_timer()
        assert point.positions_value == 1250.0
        body = (await client.get("/api/v1/portfolio/history")).json()
    assert body["account"] == 1
    assert body["points"][0] == {  # newest first
        "timestamp": "2026-01-02T03:04:05Z",
        "equity": 10_250.0,
        "cash": 9000.0,
        "positions_value": 1250.0,
        "realized_pnl": 0.0,
        "trigger": "timer",
    }
    # The window: since inclusive, until exclusive.
    async with running(create_app(settings_for(portfolio_history_seconds=0))) as client:
        since = await client.get(
            "/api/v1/portfolio/history", params={"since": "2026-01-02T03:04:05Z"}
        )
        until = await client.get(
            "/api/v1/portfolio/history", params={"until": "2026-01-02T03:04:05Z"}
        )
    # The fill's point was taken now, after the timer's injected 2026-01-02.
    assert [p["trigger"] for p in since.json()["points"]] == ["timer", "fill"]
    assert until.json()["points"] == []


async def test_bad_window_is_422(client: httpx.AsyncClient) -> None:
    """A since or until that is not a time is a 422."""
    response = await client.get("/api/v1/portfolio/history", params={"since": "soon"})
    assert response.status_code == 422


async def test_history_pages_newest_first(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """Points page like orders: newest first, `next_cursor` to the older ones, then none."""
    for count, amount in enumerate((100, 200, 300), start=1):
        await client.post("/api/v1/trade", json=TRADE | {"amount": amount})
        await points_when(client, lambda p, n=count: len(p) == n)  # type: ignore[misc]
    first = (await client.get("/api/v1/portfolio/history", params={"limit": 2})).json()
    assert [p["cash"] for p in first["points"]] == [9400.0, 9700.0]
    rest = await client.get(
        "/api/v1/portfolio/history", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [p["cash"] for p in rest.json()["points"]] == [9900.0]
    assert rest.json()["next_cursor"] is None
    bad = await client.get("/api/v1/portfolio/history", params={"cursor": "nope!"})
    assert bad.status_code == 422


async def test_fills_within_the_spacing_share_the_next_point(
    settings_for: Callable[..., Settings], risk: RiskStub
) -> None:
    """After a fill's point the history waits PORTFOLIO_FILL_POINT_SECONDS: the fills
    meanwhile are not written one point each but share the next, which has them all."""
    slept: list[float] = []
    resume = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await resume.wait()
        resume.clear()

    app = create_app(settings_for(portfolio_fill_point_seconds=2.5))
    async with serving(app) as served, client_of(served.asgi, "http://execution") as client:
        history: History = served.state["history"]
        history._sleep = sleep
        await client.post("/api/v1/trade", json=TRADE)
        points = await points_when(client, lambda p: len(p) == 1)
        assert [(p["trigger"], p["cash"]) for p in points] == [("fill", 9000.0)]
        for _ in range(3):  # during the spacing: no point yet
            await client.post("/api/v1/trade", json=TRADE | {"amount": 100})
        assert slept == [2.5]
        assert len(await points_when(client, lambda p: len(p) > 1, timeout=0.2)) == 1
        resume.set()  # the spacing is over: one point for the three fills
        points = await points_when(client, lambda p: len(p) == 2)
        assert [(p["trigger"], p["cash"]) for p in points] == [("fill", 9000.0), ("fill", 8700.0)]
        assert slept == [2.5, 2.5]


def test_the_fill_point_spacing_is_a_setting_of_a_second() -> None:
    """One point a second at most by default; 0 is a point after every burst."""
    assert Settings.model_fields["portfolio_fill_point_seconds"].default == 1.0
    assert Settings(portfolio_fill_point_seconds=0).portfolio_fill_point_seconds == 0
