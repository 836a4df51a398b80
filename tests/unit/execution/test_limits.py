"""Risk's limits hold however trades interleave: concurrent oversized buys through the real
Risk service, on SQLite, on PostgreSQL, and over two Execution processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from execution.broker import AMOUNT_STEP, BPS, Books, Costs, Fill, Refusal
from execution.ledger import Holdings, Position
from execution.limits import (
    DecidedLimits,
    decided_limits,
    limited_reason,
    moved,
    plan_within_limits,
    room_at_fill,
)

from shared.limits import buy_room
from shared.var import z_score
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
        {"limits": decision()["limits"], "valuation": ["X"]},
        *(
            {**answer, "limits": {**answer["limits"], "var_confidence": confidence}}
            for answer in [decision(X={"price": 1.0, "volatility_daily": 0.1})]
            for confidence in (0.0, 1.0, 1.5)
        ),
    ],
    ids=[
        "empty",
        "no-valuation",
        "limits-not-object",
        "no-sigma",
        "negative",
        "nan",
        "inf",
        "valuation-not-object",
        "confidence-0",
        "confidence-1",
        "confidence-above-1",
    ],
)
def test_an_answer_without_usable_limits_gives_none(answer: dict[str, Any]) -> None:
    """Missing, malformed, negative or non-finite figures, or a VaR confidence outside (0, 1)
    (its quantile would raise inside the fill's transaction): no re-check is possible."""
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
    assert "leaves room for 0.00000000, below the minimum order of 10" in planned.reason
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


def usable(answer: dict[str, Any]) -> DecidedLimits:
    found = decided_limits(answer)
    assert found is not None
    return found


def test_zero_figures_are_usable_limits() -> None:
    """A volatility of 0 (a stablecoin) is a figure, not a gap: the re-check still applies."""
    found = usable(decision(USDC_USD={"price": 1.0, "volatility_daily": 0.0}))
    assert found.sigmas == {"USDC-USD": 0.0}


def test_the_locked_books_are_valued_as_documented() -> None:
    """The traded symbol at the fill price, a position Risk valued at its price and
    volatility, one bought since at its average fill price (fee out) with the highest
    volatility Risk reported, fractional quantities included: then Risk's `buy_room`."""
    limits = usable(
        decision(
            ETH_USD={"price": 2000.0, "volatility_daily": 0.15},
            BTC_USD={"price": 50000.0, "volatility_daily": 0.02},
            DOGE_USD={"price": 0.1, "volatility_daily": 0.3},
        )
    )
    locked = books(
        "8000",
        ETH_USD=("0.1", "200.2"),
        BTC_USD=("0.01", "400.4"),
        DOGE_USD=("200", "20.02"),
        SOL_USD=("2", "200.2"),  # bought since Risk looked, at 100 plus the 0.1% fee
    )
    room, binding = room_at_fill("ETH-USD", locked, limits, D(2010), D("0.001"))
    expected = buy_room(
        symbol="ETH-USD",
        cash=8000.0,
        values={
            "ETH-USD": 0.1 * 2010,
            "BTC-USD": 0.01 * 50000,
            "DOGE-USD": 200 * 0.1,
            "SOL-USD": 200.0,
        },
        sigmas={"ETH-USD": 0.15, "BTC-USD": 0.02, "DOGE-USD": 0.3, "SOL-USD": 0.3},
        cap_share=0.25,
        var_limit_share=0.05,
        z=z_score(0.95),
        buy_fee_rate=0.001,
        fee_rate=0.001,
    )
    assert binding == "var_limit"
    assert expected.var_limit < min(expected.position_limit, expected.cash)
    assert room == D(repr(expected.var_limit)).quantize(AMOUNT_STEP, ROUND_FLOOR)


@pytest.mark.parametrize(
    ("symbol", "sigma"), [("ETH-USD", 0.15), ("ADA-USD", 0.3)], ids=["valued", "unvalued"]
)
def test_a_symbol_not_held_is_bought_at_its_own_volatility(symbol: str, sigma: float) -> None:
    """Not held yet: the buy adds VaR at the volatility Risk gave it, or at the highest one
    Risk reported when its answer did not value the symbol."""
    limits = usable(
        decision(
            ETH_USD={"price": 2000.0, "volatility_daily": 0.15},
            DOGE_USD={"price": 0.1, "volatility_daily": 0.3},
        )
    )
    room, binding = room_at_fill(
        symbol, books("9000", DOGE_USD=("1000", "100.1")), limits, D(2010), D("0.001")
    )
    expected = buy_room(
        symbol=symbol,
        cash=9000.0,
        values={"DOGE-USD": 100.0},
        sigmas={symbol: sigma, "DOGE-USD": 0.3},
        cap_share=0.25,
        var_limit_share=0.05,
        z=z_score(0.95),
        buy_fee_rate=0.001,
        fee_rate=0.001,
    )
    assert binding == "var_limit"
    assert room == D(repr(expected.var_limit)).quantize(AMOUNT_STEP, ROUND_FLOOR)


def test_sold_out_positions_are_skipped() -> None:
    """A position sold down to 0 (kept as a row, unknown to Risk) adds nothing, and the
    positions after it still count."""
    limits = usable(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    held = {"BTC_USD": ("10", "1001")}
    with_sold = books("9000", ADA_USD=("0", "0"), **held)
    assert list(with_sold.held) == ["ADA-USD", "BTC-USD"]
    assert room_at_fill("BTC-USD", with_sold, limits, D(100), D("0.001")) == room_at_fill(
        "BTC-USD", books("9000", **held), limits, D(100), D("0.001")
    )


@pytest.mark.parametrize(
    ("locked", "sigma", "binding"),
    [
        (books("10000"), 0.001, "position_limit"),
        (books("10000"), 0.2, "var_limit"),
        (books("1000", ETH_USD=("3", "9009")), 0.001, "cash"),
    ],
    ids=["position", "var", "cash"],
)
def test_the_binding_limit_is_named(locked: Books, sigma: float, binding: str) -> None:
    """The limit that leaves the least room is the one the reason names."""
    limits = usable(
        decision(
            BTC_USD={"price": 100.0, "volatility_daily": sigma},
            ETH_USD={"price": 3000.0, "volatility_daily": 0.001},
        )
    )
    assert room_at_fill("BTC-USD", locked, limits, D(100), D("0.001"))[1] == binding


def test_a_used_up_cap_leaves_no_room() -> None:
    """Held at the cap already: the room is 0, not a rounding of something above it."""
    limits = usable(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    room, binding = room_at_fill(
        "BTC-USD", books("7500", BTC_USD=("25", "2502.5")), limits, D(100), D(0)
    )
    assert (room, binding) == (D(0), "position_limit")


def test_books_beyond_float_range_give_a_finite_room() -> None:
    """No limit bounds a cash too large for a float: the room is capped, not an error."""
    limits = usable(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    room, _ = room_at_fill("BTC-USD", books("1e400"), limits, D(100), D("0.001"))
    assert room == D("1e15")


@pytest.mark.parametrize(
    ("binding", "changed", "reason"),
    [
        (
            "position_limit",
            True,
            "re-checked at fill against the books as they are now (other trades filled "
            "since Risk decided): the position cap of 25% of equity leaves room for 12.50",
        ),
        (
            "var_limit",
            False,
            "re-checked at fill at the fill price, after the fee (Risk valued the trade at "
            "the quote): the VaR limit of 5% of equity leaves room for 12.50",
        ),
        (
            "cash",
            False,
            "re-checked at fill at the fill price, after the fee (Risk valued the trade at "
            "the quote): the cash left after a 0.10% fee reserve leaves room for 12.50",
        ),
    ],
    ids=["position", "var", "cash"],
)
def test_the_reason_names_the_limit_and_why_it_was_checked_again(
    binding: str, changed: bool, reason: str
) -> None:
    """The order's reason states the limit that cut the buy, as a share of equity, and
    whether other trades or the fill price and fee made the difference."""
    limits = usable(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    assert limited_reason(binding, D("12.50"), limits, changed=changed) == reason


def test_the_held_symbol_is_valued_at_the_fill_price() -> None:
    """The slippage raises the value of the position being added to, and so lowers the
    room under the cap: 10 held at a fill price of 101, not the quote of 100."""
    limits = usable(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    costs = replace(COSTS, slippage_bps=D(100))
    locked = books("9000", BTC_USD=("10", "1001"))
    planned = plan_within_limits("BTC-USD", D(5000), D(100), locked, limits, costs, changed=False)
    held = 10 * D(101)
    room = (D("0.25") * (9000 + held) - held) / (1 + D("0.25") * D("0.001"))
    room = room.quantize(AMOUNT_STEP, ROUND_FLOOR)  # down: the cut never exceeds the cap
    assert isinstance(planned, Fill)
    assert planned.filled_amount == room
    assert planned.clamped == limited_reason("position_limit", room, limits, changed=False)


def test_a_buy_of_exactly_the_room_is_not_cut() -> None:
    """Asking for the room to the last step is within the limits: nothing to explain."""
    limits = usable(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    room, _ = room_at_fill("BTC-USD", books("10000"), limits, D(100), COSTS.fee_bps / BPS)
    planned = plan_within_limits(
        "BTC-USD", room, D(100), books("10000"), limits, COSTS, changed=True
    )
    assert isinstance(planned, Fill)
    assert (planned.filled_amount, planned.clamped) == (room, None)


def test_a_room_of_exactly_the_minimum_order_is_filled() -> None:
    """The minimum order is itself a fillable amount: a room of that much is not refused."""
    limits = usable(decision(BTC_USD={"price": 100.0, "volatility_daily": 0.001}))
    room, _ = room_at_fill("BTC-USD", books("10000"), limits, D(100), COSTS.fee_bps / BPS)
    limits = replace(limits, min_order_usd=float(room))
    planned = plan_within_limits(
        "BTC-USD", D(5000), D(100), books("10000"), limits, COSTS, changed=True
    )
    assert isinstance(planned, Fill)
    assert planned.filled_amount == room


def test_a_cut_the_broker_clamps_again_gives_both_reasons() -> None:
    """Risk reserving less fee than the broker takes: the room the cash leaves is clamped
    again for the fee, and the order says both, in that order."""
    limits = replace(
        usable(
            decision(
                BTC_USD={"price": 100.0, "volatility_daily": 0.001},
                ETH_USD={"price": 3000.0, "volatility_daily": 0.001},
            )
        ),
        buy_fee_rate=0.0,
    )
    locked = books("1000", ETH_USD=("3", "9009"))
    planned = plan_within_limits("BTC-USD", D(5000), D(100), locked, limits, COSTS, changed=False)
    assert isinstance(planned, Fill)
    cut = limited_reason("cash", D("1000.00000000"), limits, changed=False)
    assert planned.clamped == f"{cut}; reduced to the 1000 cash available"


def test_a_sold_out_position_is_no_change() -> None:
    """A position Risk was sent at 0 and still at 0 (or gone) is not another trade's fill."""
    seen = Holdings(
        cash=D(100),
        realized_pnl=D(0),
        starting_cash=D(100),
        positions={
            "ADA-USD": Position(symbol="ADA-USD", quantity=D(0), cost_basis=D(0), realized_pnl=D(5))
        },
    )
    assert not moved(seen, books("100"))
    assert not moved(seen, books("100", ADA_USD=("0", "0")))
