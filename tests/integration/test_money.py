"""The money of a healthy trade, end to end: every number the order and the books show.

An Execution process of its own (its own ledger, a fee and slippage the test knows)
trades through the stack's real Risk, gateway and regime services; between it and Risk
sits a recording pass-through, so the test knows exactly what Risk answered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.integration.stack import Stack
from tests.support import keys
from tests.support.servers import ServiceProcess, free_port, serve_in_thread

pytestmark = pytest.mark.integration

FEE_BPS, SLIPPAGE_BPS, STARTING_CASH = Decimal(25), Decimal(10), Decimal(10_000)
CENT, UNIT, BPS = Decimal("1e-8"), Decimal("1e-12"), Decimal(10_000)
REAL_REGIMES = {"TRENDING", "CHOPPY", "VOLATILE"}


class RecordingProxy:
    """Forwards every request to `target` unchanged and keeps (request, status, answer)."""

    def __init__(self) -> None:
        self.target = ""
        self.exchanges: list[tuple[Any, int, Any]] = []

    def app(self) -> Starlette:
        async def forward(request: Request) -> Response:
            body = await request.body()
            headers = {
                k: v for k, v in request.headers.items() if k not in {"host", "content-length"}
            }
            async with httpx.AsyncClient(base_url=self.target, timeout=15) as client:
                answer = await client.request(
                    request.method,
                    request.url.path,
                    params=request.query_params,
                    content=body,
                    headers=headers,
                )
            if request.method == "POST":
                self.exchanges.append((json.loads(body), answer.status_code, answer.json()))
            return Response(
                answer.content,
                status_code=answer.status_code,
                media_type=answer.headers.get("content-type"),
            )

        return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])


@pytest.fixture
def execution(own_stack: Stack, tmp_path: Path) -> Iterator[tuple[str, RecordingProxy]]:
    """An Execution process wired as the stack's, but to Risk through the recorder."""
    proxy = RecordingProxy()
    proxy.target = own_stack.url("risk-management")
    with serve_in_thread(proxy.app()) as recorder:
        stack_env = own_stack.procs["execution"].env
        env = stack_env | {
            "RISK_URL": recorder.url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'money.db'}",
            "FEE_BPS": str(FEE_BPS),
            "SLIPPAGE_BPS": str(SLIPPAGE_BPS),
            "STARTING_CASH": str(STARTING_CASH),
        }
        process = ServiceProcess("execution", free_port(), env, tmp_path / "execution.log")
        process.start()
        try:
            yield process.url, proxy
        finally:
            process.stop()


def portfolio(url: str) -> tuple[float, float]:
    """Cash and the BTC-USD quantity on the books, as the API shows them."""
    body = httpx.get(url + "/api/v1/portfolio", headers=keys.headers(), timeout=15).json()
    held = [p["quantity"] for p in body["positions"] if p["symbol"] == "BTC-USD"]
    return body["cash"], held[0] if held else 0.0


@pytest.mark.parametrize(
    "amount",
    [
        # Within every real regime's position cap (VOLATILE: 25% x 0.25 of 10 000 = 625).
        500,
        # Above any cap, so Risk's max_amount binds.
        5_000,
    ],
)
def test_a_healthy_trade_moves_exactly_the_money_risk_allowed(
    execution: tuple[str, RecordingProxy], amount: int
) -> None:
    """Fill = min(amount, max_amount), fee = FEE_BPS, cash and position move by exactly that."""
    url, risk = execution
    cash_before, held_before = portfolio(url)
    assert (cash_before, held_before) == (float(STARTING_CASH), 0)

    response = httpx.post(
        url + "/api/v1/trade",
        json={"symbol": "BTC-USD", "side": "buy", "amount": amount},
        headers=keys.headers(),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    order = response.json()

    # Risk was asked about this trade and these books, once, and the order carries its answer.
    [(asked, status, answer)] = risk.exchanges
    assert status == 200
    assert (asked["symbol"], asked["side"], asked["amount"]) == ("BTC-USD", "buy", amount)
    assert asked["current_portfolio"] == {"cash": cash_before, "positions": {}}
    assert order["risk"] == answer
    assert answer["approved"] is True
    assert answer["regime"] in REAL_REGIMES, answer  # a real call, not UNKNOWN
    assert 0 < answer["max_amount"] <= amount

    # The ledger's arithmetic (decimal, rounded against the trader), shown as JSON floats:
    # the fill is min(amount, max_amount) to 1e-8, at Risk's price moved by the slippage.
    filled = min(Decimal(amount), Decimal(str(answer["max_amount"]))).quantize(CENT, ROUND_FLOOR)
    price = (Decimal(str(answer["price"])) * (1 + SLIPPAGE_BPS / BPS)).quantize(UNIT, ROUND_CEILING)
    fee = (filled * FEE_BPS / BPS).quantize(CENT, ROUND_CEILING)
    quantity = (filled / price).quantize(UNIT, ROUND_FLOOR)
    assert order["status"] == "FILLED"
    assert order["requested_amount"] == amount
    assert order["filled_amount"] == float(filled)
    assert order["price"] == float(price)
    assert order["fee"] == float(fee)
    assert order["quantity"] == float(quantity)

    # The books moved by exactly the fill and its fee, no more, no less.
    assert portfolio(url) == (
        float(Decimal(str(cash_before)) - filled - fee),
        float(Decimal(str(held_before)) + quantity),
    )
