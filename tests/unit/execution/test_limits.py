"""Risk's limits hold however trades interleave: concurrent oversized buys through the real
Risk service, on SQLite, on PostgreSQL, and over two Execution processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from execution.broker import Books, Costs, Fill, Refusal
from execution.ledger import Holdings, Position
from execution.limits import decided_limits, moved, plan_within_limits

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


# The re-check itself, as pure functions (what the interleavings above rely on).
D = Decimal
COSTS = Costs(slippage_bps=D(0), fee_bps=D(10), min_order_amount=D(1))


def decision(**valuation: dict[str, float]) -> dict[str, Any]:
    """Risk's answer as far as the re-check reads it."""
    limits = {
        "max_position_share": 0.25,
        "var_limit_share": 0.05,
        "var_confidence": 0.95,
        "buy_fee_rate": 0.001,
        "min_order_usd": 10.0,
    }
    return {"limits": limits, "valuation": {s.replace("_", "-"): v for s, v in valuation.items()}}


def books(cash: str, **held: tuple[str, str]) -> Books:
    positions = {s.replace("_", "-"): (D(q), D(c)) for s, (q, c) in held.items()}
    return Books(
        cash=D(cash),
        realized_pnl=D(0),
        quantity=D(0),
        cost_basis=D(0),
        symbol_realized_pnl=D(0),
        held=positions,
    )


def test_the_limits_are_read_from_risks_answer() -> None:
    """The limits and the valuation Risk states are read as numbers."""
    found = decided_limits(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.03}))
    assert found is not None
    assert (found.cap_share, found.var_limit_share, found.var_confidence) == (0.25, 0.05, 0.95)
    assert (found.buy_fee_rate, found.min_order_usd) == (0.001, 10.0)
    assert (found.prices, found.sigmas) == ({"BTC-USD": 100.0}, {"BTC-USD": 0.03})


@pytest.mark.parametrize(
    "answer",
    [
        {},
        decision(),  # no valuation
        {"limits": "none", "valuation": {"X": {"price": 1.0, "volatility_daily": 0.1}}},
        decision(X={"price": 1.0}),  # no volatility
        decision(X={"price": -1.0, "volatility_daily": 0.1}),
        decision(X={"price": 1.0, "volatility_daily": math.nan}),
        decision(X={"price": math.inf, "volatility_daily": 0.1}),
    ],
    ids=["empty", "no-valuation", "limits-not-object", "no-sigma", "negative", "nan", "inf"],
)
def test_an_answer_without_usable_limits_gives_none(answer: dict[str, Any]) -> None:
    """Missing, malformed, negative or non-finite figures: no re-check is possible."""
    assert decided_limits(answer) is None


def test_a_buy_within_the_room_is_planned_as_asked() -> None:
    """Room to spare: the broker's plan of the full amount, with nothing clamped."""
    limits = decided_limits(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.01}))
    assert limits is not None
    planned = plan_within_limits(
        "BTC-USD", D(100), D(100), books("10000"), limits, COSTS, changed=False
    )
    assert isinstance(planned, Fill)
    assert (planned.filled_amount, planned.clamped) == (D(100), None)


def test_a_buy_over_the_position_cap_is_cut_and_says_why() -> None:
    """10,000 of cash, a 25% cap: a buy of 5,000 is cut below 2,500, naming the cap."""
    limits = decided_limits(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    assert limits is not None
    planned = plan_within_limits(
        "BTC-USD", D(5000), D(100), books("10000"), limits, COSTS, changed=True
    )
    assert isinstance(planned, Fill)
    assert D(2400) < planned.filled_amount <= D(2500)
    assert planned.clamped is not None
    assert "the position cap of 25% of equity" in planned.clamped
    assert "other trades filled since Risk decided" in planned.clamped


def test_room_below_the_minimum_refuses() -> None:
    """A cap already used up leaves less than the minimum order: refused, saying so."""
    limits = decided_limits(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    assert limits is not None
    full = books("7500", BTC_USD=("25", "2500"))
    planned = plan_within_limits("BTC-USD", D(500), D(100), full, limits, COSTS, changed=False)
    assert isinstance(planned, Refusal)
    assert "below the minimum order of 10" in planned.reason
    assert "at the fill price, after the fee" in planned.reason


def test_books_moved_when_cash_or_a_quantity_changed() -> None:
    """Other trades filled in between if the cash or any held quantity differs."""
    seen = Holdings(
        cash=D(100),
        realized_pnl=D(0),
        starting_cash=D(100),
        positions={
            "BTC-USD": Position(
                symbol="BTC-USD", quantity=D(1), cost_basis=D(50), realized_pnl=D(0)
            )
        },
    )
    assert not moved(seen, books("100", BTC_USD=("1", "50")))
    assert moved(seen, books("99", BTC_USD=("1", "50")))
    assert moved(seen, books("100", BTC_USD=("2", "100")))
    assert not moved(seen, books("100", BTC_USD=("1", "50"), ETH_USD=("0", "0")))
