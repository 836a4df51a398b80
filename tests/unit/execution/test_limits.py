"""Risk's limits hold however trades interleave: concurrent oversized buys through the real
Risk service, on SQLite, on PostgreSQL, and over two Execution processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import keys
from tests.support.servers import ThreadServer
from tests.unit.execution.conftest import StartApp
from tests.unit.execution.stubs import GatewayStub, RiskStub
from tests.unit.execution.test_processes import factory, started

CAP = 0.25  # MAX_POSITION_SHARE in a TRENDING regime (multiplier 1)
FEES = {"fee_bps": 10, "slippage_bps": 5}


async def buy_all(urls: list[str], symbols: list[str], amount: float) -> list[httpx.Response]:
    async with httpx.AsyncClient(headers=keys.headers(), timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{urls[i % len(urls)]}/api/v1/trade",
                    json={"symbol": symbols[i % len(symbols)], "side": "buy", "amount": amount},
                )
                for i in range(40)
            )
        )


@pytest.mark.parametrize("symbols", [["DOGE-USD"], ["DOGE-USD", "ADA-USD", "SOL-USD", "ETH-USD"]])
async def test_forty_concurrent_oversized_buys_stay_within_the_limits(
    start: StartApp,
    real_risk: ThreadServer,
    priced: GatewayStub,
    symbols: list[str],
) -> None:
    """40 concurrent buys of 1,000,000 each end with every position within its cap."""
    async with start(risk_url=real_risk.url, **FEES) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/trade",
                    json={"symbol": symbols[i % len(symbols)], "side": "buy", "amount": 1e6},
                )
                for i in range(40)
            )
        )
        assert {a.status_code for a in answers} == {201}
        holdings = (await client.get("/api/v1/portfolio")).json()
        orders = (await client.get("/api/v1/orders", params={"limit": 500})).json()["orders"]
    _check(holdings, orders, symbols)


def _check(portfolio: dict[str, Any], orders: list[dict[str, Any]], symbols: list[str]) -> None:
    fills = [o for o in orders if o["status"] == "FILLED"]
    last_price: dict[str, float] = {}
    for order in reversed(fills):
        last_price[order["symbol"]] = order["price"]
    held = {p["symbol"]: p["quantity"] for p in portfolio["positions"]}
    assert set(held) == set(symbols) == set(last_price)
    cash = portfolio["cash"]
    values = {s: q * last_price[s] for s, q in held.items()}
    equity = cash + math.fsum(values.values())
    assert cash >= 0
    spent = math.fsum(o["filled_amount"] + o["fee"] for o in fills)
    assert cash == pytest.approx(10_000 - spent, abs=1e-6)
    for symbol, value in values.items():
        # Fees paid by later fills of other symbols lower the equity after this symbol's
        # last fill, which no limit on this symbol's buy can foresee: compare with the
        # equity as it was at that fill.
        newest = next(i for i, o in enumerate(fills) if o["symbol"] == symbol)
        at_fill = equity + math.fsum(o["fee"] for o in fills[:newest])
        assert value <= CAP * at_fill + 1e-6, (symbol, value / at_fill)
    # Risk sized each buy on the books before the others filled: the fill-time re-check
    # is what cut (or refused) the later ones.
    reasons = [o["reason"] for o in orders]
    assert any("re-checked at fill" in reason for reason in reasons), reasons


@pytest.mark.parametrize("symbols", [["DOGE-USD"], ["DOGE-USD", "ADA-USD", "SOL-USD", "ETH-USD"]])
async def test_two_processes_on_postgresql_stay_within_the_limits(
    tmp_path: Path,
    real_risk: ThreadServer,
    priced: GatewayStub,
    risk: RiskStub,
    gateway_server: tuple[GatewayStub, ThreadServer],
    symbols: list[str],
    postgres_url: str,
) -> None:
    """40 concurrent oversized buys over two processes sharing one PostgreSQL ledger."""
    make = factory(postgres_url, tmp_path, (risk, real_risk), gateway_server)
    async with started(make(), make()) as processes:
        urls = [p.url for p in processes]
        answers = await buy_all(urls, symbols, 1e6)
        assert {a.status_code for a in answers} == {201}
        async with httpx.AsyncClient(
            headers=keys.headers(), base_url=urls[0], timeout=30
        ) as client:
            holdings = (await client.get("/api/v1/portfolio")).json()
            orders = (await client.get("/api/v1/orders", params={"limit": 500})).json()
    _check(holdings, orders["orders"], symbols)
