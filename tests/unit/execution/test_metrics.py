"""Execution's /metrics: orders, notional, ledger writes, equity and Risk's client, exactly."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.metrics import Scraped, parse_metrics
from tests.unit.execution.conftest import StartApp
from tests.unit.execution.stubs import RiskStub


async def trade(
    client: httpx.AsyncClient, side: str, amount: float, symbol: str = "BTC-USD"
) -> dict:  # type: ignore[type-arg]
    response = await client.post(
        "/api/v1/trade", json={"symbol": symbol, "side": side, "amount": amount}
    )
    return response.json()  # type: ignore[no-any-return]


async def scrape(client: httpx.AsyncClient) -> Scraped:
    return parse_metrics((await client.get("/metrics")).text)


async def test_orders_fills_and_writes_are_counted_once(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """Two fills and one rejection: the order counters and the notional say exactly that,
    each was timed as a ledger write; a replayed Idempotency-Key counts nothing more."""
    writes = (await scrape(client)).total("execution_ledger_write_seconds_count")
    first = await trade(client, "buy", 300)
    second = await trade(client, "buy", 200)
    refused = await trade(client, "sell", 100, symbol="ETH-USD")
    assert [first["status"], second["status"], refused["status"]] == ["FILLED"] * 2 + ["REJECTED"]
    # Each order is one ledger write (the key purger may add its own in the background).
    assert (await scrape(client)).total("execution_ledger_write_seconds_count") >= writes + 3
    body = {"symbol": "BTC-USD", "side": "buy", "amount": 50}
    for _ in range(2):
        replay = await client.post("/api/v1/trade", json=body, headers={"Idempotency-Key": "k-1"})
        assert replay.status_code == 201
    counted = await scrape(client)
    assert counted.total("execution_orders_total", side="buy", status="FILLED") == 3
    assert counted.total("execution_orders_total", side="sell", status="REJECTED") == 1
    assert counted.total("execution_orders_total") == 4
    assert counted.total("execution_fill_notional_usd_total") == pytest.approx(550)
    assert counted.total("upstream_requests_total", target="risk_management", outcome="ok") == 4
    assert counted.total("execution_trading_state", state="ACTIVE") == 1
    assert counted.total("execution_trading_state", state="HALTED") == 0


async def test_equity_is_the_latest_history_point(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """execution_equity_usd is absent before any portfolio point, then the latest point's."""
    assert "execution_equity_usd" not in {n for n, _ in (await scrape(client)).samples}
    await trade(client, "buy", 300)
    deadline = asyncio.get_running_loop().time() + 10
    while "execution_equity_usd" not in {n for n, _ in (await scrape(client)).samples}:
        assert asyncio.get_running_loop().time() < deadline, "no history point after a fill"
        await asyncio.sleep(0.01)
    points = (await client.get("/api/v1/portfolio/history")).json()["points"]
    assert (await scrape(client)).total("execution_equity_usd") == pytest.approx(
        points[-1]["equity"]
    )


async def test_trading_state_is_read_at_each_scrape(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """A halt shows as execution_trading_state{state="HALTED"} 1 and the others 0."""
    assert (await scrape(client)).total("execution_trading_state", state="ACTIVE") == 1
    change = {"state": "HALTED", "reason": "metrics test"}
    assert (await client.put("/api/v1/trading-state", json=change)).status_code == 200
    counted = await scrape(client)
    assert counted.total("execution_trading_state", state="HALTED") == 1
    assert counted.total("execution_trading_state") == 1
    refused = await trade(client, "buy", 100)
    assert refused["status"] == 409
    assert (await scrape(client)).total("execution_orders_total", status="REJECTED") == 1


async def test_risk_down_counts_the_refused_attempt(start: StartApp, dead_url: str) -> None:
    """Risk unreachable: one REJECTED order, no fill, the failed attempts by outcome."""
    async with start(risk_url=dead_url, retry_max_attempts=1) as client:
        response = await client.post(
            "/api/v1/trade", json={"symbol": "BTC-USD", "side": "buy", "amount": 10}
        )
        assert response.status_code == 503
        counted = await scrape(client)
    assert counted.total("execution_orders_total", side="buy", status="REJECTED") == 1
    assert counted.total("execution_fill_notional_usd_total") == 0
    assert counted.total("upstream_requests_total", target="risk_management") == 1
    assert (
        counted.total(
            "upstream_requests_total", target="risk_management", outcome="transport_error"
        )
        == 1
    )
