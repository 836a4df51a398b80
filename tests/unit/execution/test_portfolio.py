"""The portfolio valued at gateway prices: maths, stale prices, missing prices, fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.unit.execution.conftest import StartApp
from tests.unit.execution.stubs import FakeSource, GatewayStub, RiskStub, approve_all


async def trade(client: httpx.AsyncClient, symbol: str, side: str, amount: float) -> None:
    body = {"symbol": symbol, "side": side, "amount": amount}
    response = await client.post("/api/v1/trade", json=body)
    assert response.json()["status"] == "FILLED"


async def test_positions_are_valued_at_gateway_prices(
    start: StartApp, risk: RiskStub, gateway: GatewayStub
) -> None:
    """Average cost includes fees; market value and unrealised P&L use the gateway's price."""
    async with start(fee_bps=100) as client:
        await trade(client, "BTC-USD", "buy", 1000)  # 10 units at 100, fee 10
        risk.rule = lambda body: approve_all(body) | {"price": 200.0}
        await trade(client, "BTC-USD", "sell", 400)  # 2 units at 200, fee 4
        gateway.prices["BTC-USD"] = (150.0, datetime.now(UTC))
        portfolio = (await client.get("/api/v1/portfolio")).json()
    (position,) = portfolio["positions"]
    assert position["quantity"] == 8.0
    assert position["average_cost"] == pytest.approx(101.0)  # (1000 + 10) / 10
    assert position["market_value"] == 1200.0
    assert position["unrealized_pnl"] == pytest.approx(1200 - 808)
    assert (position["price_status"], position["price_source"]) == ("live", "coinbase")
    assert portfolio["realized_pnl"] == pytest.approx(400 - 4 - 202)
    assert portfolio["cash"] == pytest.approx(10_000 - 1010 + 396)
    assert portfolio["equity"] == pytest.approx(portfolio["cash"] + 1200)
    assert portfolio["complete"] is True


async def test_stale_and_missing_prices_are_said(
    start: StartApp, gateway: GatewayStub, source: FakeSource
) -> None:
    """An old quote is 'stale'; no price anywhere is 'missing', valued at cost, and said."""
    async with start() as client:
        await trade(client, "BTC-USD", "buy", 500)
        await trade(client, "ETH-USD", "buy", 300)
        gateway.prices["BTC-USD"] = (110.0, datetime.now(UTC) - timedelta(minutes=10))
        gateway.down.add("ETH-USD")  # the gateway is unavailable for it, and so is the source
        portfolio = (await client.get("/api/v1/portfolio")).json()
    by_symbol = {p["symbol"]: p for p in portfolio["positions"]}
    assert by_symbol["BTC-USD"]["price_status"] == "stale"
    assert by_symbol["BTC-USD"]["market_value"] == 550.0
    assert by_symbol["ETH-USD"]["price_status"] == "missing"
    assert by_symbol["ETH-USD"]["market_value"] is None
    assert portfolio["equity"] == pytest.approx(10_000 - 800 + 550 + 300)
    assert portfolio["complete"] is False
    assert len(portfolio["warnings"]) == 2


async def test_gateway_down_falls_back_to_the_direct_source(
    start: StartApp, source: FakeSource, dead_url: str
) -> None:
    """With the gateway unreachable, prices come from the market source directly."""
    async with start(market_data_url=dead_url) as client:
        await trade(client, "BTC-USD", "buy", 500)
        source.prices["BTC-USD"] = 120.0
        portfolio = (await client.get("/api/v1/portfolio")).json()
    (position,) = portfolio["positions"]
    assert (position["price"], position["price_source"]) == (120.0, "simulated")
    assert position["market_value"] == 600.0
