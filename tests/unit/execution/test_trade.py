"""The trade endpoint end to end on each ledger backend, Risk answering from a stub server
(and TradeService built directly for what the app never configures)."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import httpx
import orjson
import pytest
from execution.broker import Costs
from execution.config import Settings
from execution.db import engine_url, open_database
from execution.idempotency import IdempotencyStore
from execution.ledger import Ledger
from execution.migrate import migrate
from execution.schemas import TradeRequest
from execution.service import TradeService
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.client import ServiceClient
from tests.unit.execution.conftest import StartApp
from tests.unit.execution.stubs import PRICE, GatewayStub, RiskStub, approve_all, problem


async def _spend(database_url: str, cash: str) -> None:
    """Set the ledger's cash from outside the service, as another writer would."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30) as conn:
            conn.execute("UPDATE accounts SET cash = ?", (cash,))
        return
    engine = create_async_engine(engine_url(database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE accounts SET cash = :cash"), {"cash": cash})
    finally:
        await engine.dispose()


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
    """Risk is asked with the cash and quantities on the ledger, and an Idempotency-Key
    naming the order (a retry of that one request to Risk is then answered once)."""
    first = (await buy(client, 1000)).json()
    second = (await buy(client, 500)).json()
    assert risk.requests[1]["current_portfolio"] == {
        "cash": 9000.0,
        "positions": {"BTC-USD": 10.0},
    }
    assert risk.keys == [f"execution-{first['order_id']}", f"execution-{second['order_id']}"]


async def test_not_approved_is_a_rejected_order(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """A refusal is 201 REJECTED with Risk's reason and its answer kept, nothing filled (no
    quantity, price or fee), and no money moves."""
    risk.rule = lambda body: approve_all(body) | {"approved": False, "reason": "VaR limit"}
    response = await buy(client, 1000)
    assert response.status_code == 201
    order = response.json()
    assert (order["status"], order["reason"], order["filled_amount"]) == (
        "REJECTED",
        "VaR limit",
        0,
    )
    assert (order["quantity"], order["price"], order["fee"]) == (0, None, 0)
    assert (order["risk"]["approved"], order["risk"]["reason"]) == (False, "VaR limit")
    assert (await client.get("/api/v1/portfolio")).json()["cash"] == 10_000


@pytest.mark.parametrize(
    ("approved", "status", "reason"),
    [(False, "REJECTED", "Not approved by risk management"), (True, "FILLED", "Approved")],
)
async def test_a_decision_with_an_empty_reason_gets_one(
    client: httpx.AsyncClient, risk: RiskStub, approved: bool, status: str, reason: str
) -> None:
    """Risk's reason may be empty: the order then says plainly what Risk decided, never ""."""
    risk.rule = lambda body: approve_all(body) | {"approved": approved, "reason": ""}
    order = (await buy(client, 100)).json()
    assert (order["status"], order["reason"]) == (status, reason)


async def test_risk_4xx_is_a_rejected_order(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """Risk answering 4xx (it refused our request) is a REJECTED order naming its detail."""
    risk.rule = lambda body: problem(422, "unknown symbol", "/api/v1/approve-trade")
    order = (await buy(client, 100)).json()
    assert order["status"] == "REJECTED"
    assert "unknown symbol" in order["reason"]


@pytest.mark.parametrize(
    "unusable",
    [
        {"price": None},
        {"price": "Infinity"},
        {"price": 0},
        {"max_amount": 0},
        {"max_amount": -5},
        {"max_amount": "NaN"},
    ],
    ids=str,
)
async def test_approval_without_price_fills_nothing(
    client: httpx.AsyncClient, risk: RiskStub, unusable: dict[str, Any]
) -> None:
    """An approval with no usable (missing, infinite or zero) price or max_amount is refused
    rather than filled blind, and the order says why."""
    risk.checked = False  # an infinite price is off Risk's contract: the fail-safe under test
    risk.rule = lambda body: approve_all(body) | unusable
    order = (await buy(client, 100)).json()
    assert (order["status"], order["reason"]) == (
        "REJECTED",
        "Risk approved without a usable max_amount and price; nothing was filled",
    )
    assert (await client.get("/api/v1/portfolio")).json()["cash"] == 10_000


@pytest.mark.parametrize(
    ("decided", "filled", "quantity"),
    [({"max_amount": 0.5}, 0.5, 0.005), ({"price": 0.5}, 100, 200)],
    ids=str,
)
async def test_an_approval_under_one_dollar_or_at_a_price_under_one_fills(
    start: StartApp, risk: RiskStub, decided: dict[str, Any], filled: float, quantity: float
) -> None:
    """Any positive max_amount and price are usable: Risk allowing 0.50 USD fills 0.50, and
    a coin quoted at 0.50 USD (DOGE is under one) is bought, not refused."""
    risk.rule = lambda body: approve_all(body) | decided
    async with start(min_order_amount=0.1) as client:
        order = (await buy(client, 100)).json()
    assert (order["status"], order["filled_amount"], order["quantity"]) == (
        "FILLED",
        filled,
        quantity,
    )


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


def with_valuation(body: dict[str, Any]) -> dict[str, Any]:
    """Approve in full, stating the limits and valuation (so the fill re-checks a buy)."""
    valuation = {"BTC-USD": {"price": PRICE, "volatility_daily": 0.03}}
    return approve_all(body) | {"valuation": valuation}


def position_share(portfolio: dict[str, Any]) -> float:
    """BTC-USD's share of equity at PRICE."""
    (position,) = portfolio["positions"]
    value = position["quantity"] * PRICE
    return float(value / (portfolio["cash"] + value))


async def test_a_buy_past_the_position_cap_is_cut_at_the_fill(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """Risk approving more than its own position cap allows (25% of equity) is caught at the
    fill: the buy is cut so the position, counting what was held, ends at the cap."""
    await buy(client, 1000)  # 10% of equity, held before the oversized buy
    risk.rule = with_valuation
    order = (await buy(client, 5000)).json()
    assert order["status"] == "FILLED"
    assert 0 < order["filled_amount"] <= 1500  # 25% of 10 000, less the 1 000 held
    assert "re-checked at fill at the fill price" in order["reason"]
    assert "position cap of 25%" in order["reason"]
    share = position_share((await client.get("/api/v1/portfolio")).json())
    assert share == pytest.approx(0.25, abs=0.005)
    assert share <= 0.25


async def test_a_buy_cut_at_the_fill_after_the_books_moved_says_so(
    start: StartApp, risk: RiskStub, database_url: str
) -> None:
    """When the cash changed while Risk decided (another trade), the cut names that cause,
    not the fill price: the reason tells an operator which of the two happened."""

    def spend_then_approve(body: dict[str, Any]) -> dict[str, Any]:
        with ThreadPoolExecutor(1) as pool:  # another writer, while Risk decides
            pool.submit(asyncio.run, _spend(database_url, "6000")).result()
        return with_valuation(body)

    risk.rule = spend_then_approve
    async with start() as client:
        order = (await buy(client, 5000)).json()
    assert order["status"] == "FILLED"
    assert order["filled_amount"] <= 1500  # 25% of the 6 000 left
    assert "re-checked at fill against the books as they are now" in order["reason"]


async def test_a_sell_is_not_resized_as_a_buy(start: StartApp, risk: RiskStub) -> None:
    """An approved sell that states Risk's limits and valuation is planned as a sell (below
    the quote by the slippage, clamped to what is held): only buys are sized again at the
    fill, and a sell is never planned as a buy."""
    async with start(slippage_bps=10) as client:
        await buy(client, 1000)
        held = (await client.get("/api/v1/portfolio")).json()["positions"][0]["quantity"]
        risk.rule = with_valuation
        response = await client.post(
            "/api/v1/trade", json={"symbol": "BTC-USD", "side": "sell", "amount": 1e6}
        )
        order = response.json()
        assert (order["side"], order["status"], order["quantity"]) == ("sell", "FILLED", held)
        assert order["price"] == pytest.approx(PRICE * 0.999)
        assert (await client.get("/api/v1/portfolio")).json()["positions"] == []


class DirectRisk:
    """Risk's client, answering in process: approved in full, with limits and valuation."""

    async def post_json(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        return with_valuation(body)


async def test_a_service_without_protection_limits_fills_unmeasured(database_url: str) -> None:
    """TradeService's protections are optional: built without limits, a fill whose decision
    states a valuation is not measured (nothing to measure against) and fills as asked."""
    db = open_database(Settings(database_url=database_url))
    try:
        await migrate(db, starting_cash=Decimal(10_000))
        trades = TradeService(
            ledger=Ledger(db),
            keys=IdempotencyStore(db, ttl=timedelta(hours=24), lock_seconds=5, wait_seconds=5),
            risk=cast(ServiceClient, DirectRisk()),
            costs=Costs(slippage_bps=Decimal(0), fee_bps=Decimal(0), min_order_amount=Decimal(1)),
            retry_after=1,
        )
        answer = await trades.trade(TradeRequest(symbol="BTC-USD", side="buy", amount=100), None)
        cash = (await Ledger(db).holdings()).cash
    finally:
        await db.dispose()
    order = orjson.loads(answer.body)
    assert (answer.status_code, order["status"], order["filled_amount"]) == (201, "FILLED", 100)
    assert cash == 10_000 - 100


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
        # The problem names the service that was down and says what the order records.
        assert (problem["service"], problem["detail"]) == ("risk_management", listed[0]["reason"])


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
    assert order["risk"] == {"approved": False, "reason": order["reason"]}
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
