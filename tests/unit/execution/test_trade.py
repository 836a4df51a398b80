"""The trade endpoint end to end on each ledger backend, Risk answering from a stub server."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest
from fastapi.responses import JSONResponse

from tests.unit.execution.conftest import StartApp
from tests.unit.execution.stubs import PRICE, GatewayStub, RiskStub, approve_all, problem


async def buy(client: httpx.AsyncClient, amount: float, **headers: str) -> httpx.Response:
    return await client.post(
        "/api/v1/trade",
        json={"symbol": "BTC-USD", "side": "buy", "amount": amount},
        headers=headers,
    )


async def test_approved_buy_fills_with_slippage_and_fee(start: StartApp, risk: RiskStub) -> None:
    """A buy fills at Risk's price plus slippage, takes the fee on top, and moves the cash."""
    async with start(slippage_bps=10, fee_bps=25) as client:
        response = await buy(client, 1000, **{"X-Trace-ID": "abc12300000000000000000000000123"})
        assert response.status_code == 201
        order = response.json()
        assert order["status"] == "FILLED"
        assert order["filled_amount"] == 1000.0
        assert order["price"] == pytest.approx(PRICE * 1.001)
        assert order["quantity"] == pytest.approx(1000 / (PRICE * 1.001), abs=1e-12)
        assert order["fee"] == 2.5
        assert order["trace_id"] == "abc12300000000000000000000000123"
        assert order["risk"]["regime"] == "TRENDING"
        assert order["created_at"].endswith("Z")
        portfolio = (await client.get("/api/v1/portfolio")).json()
        assert portfolio["cash"] == 10_000 - 1000 - 2.5


async def test_fill_is_capped_by_risks_max_amount(start: StartApp, risk: RiskStub) -> None:
    """Risk's max_amount caps the fill, and its reason is the order's reason."""

    def half(body: dict[str, Any]) -> dict[str, Any]:
        reason = "Position size reduced due to CHOPPY regime"
        return approve_all(body) | {"max_amount": body["amount"] / 2, "reason": reason}

    risk.rule = half
    async with start() as client:
        order = (await buy(client, 800)).json()
    assert (order["requested_amount"], order["filled_amount"]) == (800.0, 400.0)
    assert order["reason"] == "Position size reduced due to CHOPPY regime"


async def test_risk_sees_the_ledgers_portfolio(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """Risk is asked with the cash and quantities on the ledger, and an Idempotency-Key."""
    await buy(client, 1000)
    await buy(client, 500)
    assert risk.requests[1]["current_portfolio"] == {
        "cash": 9000.0,
        "positions": {"BTC-USD": 10.0},
    }
    assert all(key and key.startswith("execution-") for key in risk.keys)


async def test_not_approved_is_a_rejected_order(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """A refusal is 201 REJECTED with Risk's reason, and no money moves."""
    risk.rule = lambda body: approve_all(body) | {"approved": False, "reason": "VaR limit"}
    response = await buy(client, 1000)
    assert response.status_code == 201
    order = response.json()
    assert (order["status"], order["reason"], order["filled_amount"]) == (
        "REJECTED",
        "VaR limit",
        0,
    )
    assert (await client.get("/api/v1/portfolio")).json()["cash"] == 10_000


async def test_risk_4xx_is_a_rejected_order(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """Risk answering 4xx (it refused our request) is a REJECTED order naming its detail."""
    risk.rule = lambda body: problem(422, "unknown symbol", "/api/v1/approve-trade")
    order = (await buy(client, 100)).json()
    assert order["status"] == "REJECTED"
    assert "unknown symbol" in order["reason"]


@pytest.mark.parametrize("unusable", [{"price": None}, {"price": "Infinity"}], ids=str)
async def test_approval_without_price_fills_nothing(
    client: httpx.AsyncClient, risk: RiskStub, unusable: dict[str, Any]
) -> None:
    """An approval with no usable (missing or infinite) price is refused rather than filled
    blind."""
    risk.checked = False  # an infinite price is off Risk's contract: the fail-safe under test
    risk.rule = lambda body: approve_all(body) | unusable
    order = (await buy(client, 100)).json()
    assert order["status"] == "REJECTED"
    assert (await client.get("/api/v1/portfolio")).json()["cash"] == 10_000


async def test_a_buy_risk_sized_with_its_limits_is_rechecked_and_fills(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """An approval that states its limits and valuation goes through the fill-time re-check:
    a buy well within the room fills as asked."""
    valuation = {"BTC-USD": {"price": PRICE, "volatility_daily": 0.03}}
    risk.rule = lambda body: approve_all(body) | {"valuation": valuation}
    response = await buy(client, 1000)
    assert response.status_code == 201
    order = response.json()
    assert (order["status"], order["filled_amount"], order["reason"]) == (
        "FILLED",
        1000,
        "Approved",
    )


async def test_sell_realises_pnl_at_average_cost(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """Selling half at a higher price realises the gain over the average cost."""
    await buy(client, 1000)  # 10 units at 100
    risk.rule = lambda body: approve_all(body) | {"price": 150.0}
    response = await client.post(
        "/api/v1/trade", json={"symbol": "BTC-USD", "side": "sell", "amount": 750}
    )
    order = response.json()
    assert (order["status"], order["quantity"]) == ("FILLED", 5.0)
    portfolio = (await client.get("/api/v1/portfolio")).json()
    assert portfolio["realized_pnl"] == 250.0
    assert portfolio["cash"] == 10_000 - 1000 + 750
    assert portfolio["positions"][0]["quantity"] == 5.0


async def test_sell_is_clamped_to_holdings(client: httpx.AsyncClient) -> None:
    """Selling more than is held sells what is held, never more."""
    await buy(client, 300)
    order = (
        await client.post(
            "/api/v1/trade", json={"symbol": "BTC-USD", "side": "sell", "amount": 1e6}
        )
    ).json()
    assert (order["status"], order["quantity"], order["filled_amount"]) == ("FILLED", 3.0, 300.0)
    assert "held" in order["reason"]


async def test_sell_with_nothing_held_is_rejected(client: httpx.AsyncClient) -> None:
    """No holdings, no sale: REJECTED, with the reason."""
    response = await client.post(
        "/api/v1/trade", json={"symbol": "ETH-USD", "side": "sell", "amount": 100}
    )
    assert response.json()["status"] == "REJECTED"
    assert "Insufficient holdings" in response.json()["reason"]


async def test_risk_down_is_503_and_the_attempt_is_listed(start: StartApp, dead_url: str) -> None:
    """Risk unreachable: 503 with Retry-After, cash unchanged, the refused attempt listed."""
    async with start(risk_url=dead_url) as client:
        response = await buy(client, 1000)
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        problem = response.json()
        assert problem["status"] == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        portfolio = (await client.get("/api/v1/portfolio")).json()
        assert portfolio["cash"] == 10_000
        listed = (await client.get("/api/v1/orders")).json()["orders"]
        assert [o["order_id"] for o in listed] == [problem["order_id"]]
        assert listed[0]["status"] == "REJECTED"
        assert listed[0]["risk"] is None
        assert "Risk service unavailable" in listed[0]["reason"]


async def test_breaker_open_is_503_with_its_retry_after(start: StartApp, dead_url: str) -> None:
    """Once Risk's breaker opens, the 503's Retry-After is the breaker's wait."""
    async with start(
        risk_url=dead_url, breaker_failure_threshold=1, breaker_recovery_seconds=40
    ) as client:
        await buy(client, 10)
        response = await buy(client, 10)
    assert response.status_code == 503
    assert 30 <= int(response.headers["Retry-After"]) <= 40


# Holds SQLite's file write lock from outside the service: a SQLite-only case.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_ledger_unavailable_is_503_not_500(start: StartApp, database_url: str) -> None:
    """A ledger locked past the busy timeout answers 503 with Retry-After, and fills nothing."""
    async with start(sqlite_busy_timeout_seconds=0.1) as client:
        blocker = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            response = await buy(client, 100)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.json()["service"] == "database"
        assert (await client.get("/api/v1/portfolio")).json()["cash"] == 10_000


async def test_cash_that_covers_the_amount_but_not_the_fee_is_never_overdrawn(
    start: StartApp, risk: RiskStub
) -> None:
    """1 001 cash, a buy of 1 000 at 25 bps: the fill shrinks so cash ends at 0, not -1.50."""
    async with start(fee_bps=25, starting_cash=1001) as client:
        order = (await buy(client, 1000)).json()
        cash = (await client.get("/api/v1/portfolio")).json()["cash"]
    assert (order["status"], order["filled_amount"], order["fee"]) == (
        "FILLED",
        998.50374064,
        2.49625936,
    )
    assert order["reason"].startswith("Approved; reduced to the 1001")
    assert cash == 0


@pytest.mark.parametrize("answer", [[{"approved": True}], "approved", 1, None])
async def test_an_answer_from_risk_that_is_not_an_object_fills_nothing(
    client: httpx.AsyncClient, risk: RiskStub, answer: Any
) -> None:
    """Risk answering 200 with a list, string, number or null is a REJECTED order, no fill."""
    risk.checked = False  # off Risk's contract on purpose: the fail-safe under test
    risk.rule = lambda body: JSONResponse(answer)
    response = await buy(client, 100)
    assert response.status_code == 201
    order = response.json()
    assert (order["status"], order["filled_amount"]) == ("REJECTED", 0)
    assert order["reason"] == "Risk answered something other than an object"
    assert (await client.get("/api/v1/portfolio")).json()["cash"] == 10_000


async def test_unlisted_symbol_is_422_before_risk(
    client: httpx.AsyncClient, risk: RiskStub, gateway: GatewayStub
) -> None:
    """A symbol the source does not list (ZZZZ-USD, USD-USD, 00-USD) is a 422; Risk is
    never asked and nothing is recorded."""
    for symbol in ("ZZZZ-USD", "USD-USD", "00-USD", "USDC-USD"):
        response = await client.post(
            "/api/v1/trade", json={"symbol": symbol, "side": "buy", "amount": 100}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "symbol"
        assert symbol in response.json()["detail"]
    assert risk.requests == []
    assert (await client.get("/api/v1/orders")).json()["orders"] == []
    ok = await client.post("/api/v1/trade", json={"symbol": "ETH-USD", "side": "buy", "amount": 1})
    assert ok.status_code == 201


async def test_symbol_list_falls_back_to_the_source(
    start: StartApp, risk: RiskStub, dead_url: str
) -> None:
    """With the gateway down the source's own list decides (ZZZZ-USD is not on it)."""
    async with start(market_data_url=dead_url) as client:
        refused = await client.post(
            "/api/v1/trade", json={"symbol": "ZZZZ-USD", "side": "buy", "amount": 100}
        )
        assert refused.status_code == 422
        assert risk.requests == []
