"""Each row makes one constraint bind and checks the amount and the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from risk_management.config import Settings
from risk_management.limits import Holding, Limits, Portfolio, Side, TradeRequest
from risk_management.sizing import Constraint, size_trade

from shared.market.models import Regime

Z95 = 1.6448536269514722
BTC = "BTC-USD"


def limits(**settings: Any) -> Limits:
    """The limits of a service started with these settings (the shipped defaults otherwise)."""
    return Settings(**settings).limits()


def book(cash: float, **held: tuple[float, float, float]) -> Portfolio:
    """A portfolio; each holding is (quantity, price, daily sigma); BTC always priced."""
    holdings = {k.replace("_", "-"): Holding(*v) for k, v in held.items()}
    holdings.setdefault(BTC, Holding(0.0, 50_000.0, 0.03))
    return Portfolio(cash=cash, holdings=holdings)


@dataclass(frozen=True)
class Row:
    name: str
    side: Side
    amount: float
    portfolio: Portfolio
    regime: Regime
    approved: bool
    max_amount: float
    constraint: Constraint
    reason: str


# fmt: off
ROWS = [
    # name, side, amount, portfolio, regime -> approved, max_amount, constraint, reason prefix
    Row("nothing binds", "buy", 1000, book(100_000), Regime.TRENDING,
        True, 1000, Constraint.NONE, "Approved in full"),
    Row("choppy regime halves the order", "buy", 1000, book(100_000), Regime.CHOPPY,
        True, 500, Constraint.REGIME, "Position size reduced due to CHOPPY regime"),
    Row("volatile regime quarters the order", "buy", 1000, book(100_000), Regime.VOLATILE,
        True, 250, Constraint.REGIME, "Position size reduced due to VOLATILE regime"),
    # 25% of the post-fee equity 100k - 0.006x, less the 5k already held:
    # x = (25_000 - 5_000) / (1 + 0.25 * 0.006) = 19970.0449 -> 19970.04.
    Row("position cap", "buy", 30_000, book(95_000, BTC_USD=(0.1, 50_000, 0.03)), Regime.TRENDING,
        True, 19_970.04, Constraint.POSITION_LIMIT,
        "Position limit: BTC-USD capped at 25% of equity (TRENDING regime)"),
    # 5000 / 1.006 = 4970.1789 -> 4970.17.
    Row("cash", "buy", 10_000, book(5_000, ETH_USD=(50, 1_900, 0.001)), Regime.TRENDING,
        True, 4970.17, Constraint.CASH, "Insufficient cash: $5,000.00 covers $4,970.17"),
    # z*0.05*40000 + z*0.10*x <= 0.05 * (100k - 0.006x):
    # x = (5000 - z*0.05*40000) / (z*0.10 + 0.05*0.006) = 10378.9187 -> 10378.91.
    Row("VaR", "buy", 20_000, book(60_000, ETH_USD=(20, 2_000, 0.05), BTC_USD=(0, 50_000, 0.10)),
        Regime.TRENDING, True, 10_378.91, Constraint.VAR_LIMIT,
        "VaR limit: 95% one-day VaR capped at 5% of equity"),
    Row("held quantity", "sell", 8_000, book(0, BTC_USD=(0.1, 50_000, 0.03)), Regime.TRENDING,
        True, 5_000, Constraint.HOLDINGS, "Sell capped at the held quantity of BTC-USD (0.1)"),
    Row("nothing held", "sell", 1_000, book(10_000), Regime.TRENDING,
        False, 0, Constraint.HOLDINGS, "Nothing to sell: no BTC-USD held"),
    Row("below the minimum order", "buy", 5, book(10_000), Regime.TRENDING,
        False, 0, Constraint.MINIMUM_ORDER, "Amount $5.00 is below the minimum order of $10.00"),
    Row("regime cut below the minimum", "buy", 50, book(10_000), Regime.UNKNOWN,
        False, 0, Constraint.REGIME, "Position size reduced due to UNKNOWN regime; $5.00 is below"),
    Row("no cash at all", "buy", 100, book(0, ETH_USD=(1, 2_000, 0.03)), Regime.TRENDING,
        False, 0, Constraint.CASH, "Insufficient cash: $0.00 covers $0.00"),
    # An over-limit book (VaR 2 * z * 0.2 * 50k = 32.9k on 100k equity) may still sell.
    Row("risk-reducing sell ignores VaR", "sell", 1_000,
        book(0, BTC_USD=(1, 50_000, 0.2), ETH_USD=(25, 2_000, 0.2)), Regime.UNKNOWN,
        True, 1_000, Constraint.NONE, "Approved in full"),
]
# fmt: on


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_each_constraint_binds(row: Row) -> None:
    """The row's constraint bounds the amount and is named in the reason."""
    request = TradeRequest(symbol=BTC, side=row.side, amount=row.amount)
    decision = size_trade(request, row.portfolio, row.regime, limits())
    assert decision.approved is row.approved
    assert decision.max_amount == pytest.approx(row.max_amount, abs=1e-9)
    assert decision.constraint is row.constraint
    assert decision.reason.startswith(row.reason)


def test_metrics_are_shares_of_post_trade_equity() -> None:
    """VaR and concentration are read on the portfolio the approved trade leaves."""
    portfolio = book(90_000, BTC_USD=(0.2, 50_000, 0.03))
    request = TradeRequest(symbol=BTC, side="buy", amount=5_000)
    decision = size_trade(request, portfolio, Regime.TRENDING, limits())
    assert decision.equity == 100_000
    assert decision.concentration == pytest.approx(0.15, abs=1e-12)
    assert decision.var_usd == pytest.approx(Z95 * 0.03 * 15_000, abs=1e-9)
    assert decision.var_share == pytest.approx(Z95 * 0.03 * 0.15, abs=1e-12)


def test_a_refused_trade_reports_the_current_portfolio() -> None:
    """When nothing is approved the metrics describe the portfolio as it stands."""
    portfolio = book(1_000, BTC_USD=(0.1, 50_000, 0.03))
    request = TradeRequest(symbol=BTC, side="buy", amount=5)
    decision = size_trade(request, portfolio, Regime.TRENDING, limits())
    assert decision.concentration == pytest.approx(5_000 / 6_000, abs=1e-12)


def test_limits_are_settings_not_constants() -> None:
    """A tighter VaR limit and a larger minimum order change the answer."""
    request = TradeRequest(symbol=BTC, side="buy", amount=1_000)
    # 40 USD of VaR on 100k, less the fee's share: 40 / (z*0.03 + 0.0004*0.006) = 810.5684.
    tight = limits(var_limit_share=0.0004)
    decision = size_trade(request, book(100_000), Regime.TRENDING, tight)
    assert decision.constraint is Constraint.VAR_LIMIT
    assert decision.max_amount == pytest.approx(810.56, abs=1e-9)
    big_minimum = size_trade(request, book(100_000), Regime.TRENDING, limits(min_order_usd=2e3))
    assert big_minimum.approved is False


def test_the_regime_shrinks_the_position_cap_too() -> None:
    """CHOPPY: the cap is 25% x 0.5 of equity, so it binds before the halved order does."""
    portfolio = book(90_000, BTC_USD=(0.2, 50_000, 0.03))  # 10k held of 100k equity
    request = TradeRequest(symbol=BTC, side="buy", amount=50_000)
    decision = size_trade(request, portfolio, Regime.CHOPPY, limits())
    assert decision.constraint is Constraint.POSITION_LIMIT
    # 12.5% of 100k less 10k, on the post-fee equity: 2500 / (1 + 0.125 * 0.006).
    assert decision.max_amount == pytest.approx(2_498.12, abs=1e-9)


@pytest.mark.parametrize(("amount", "approved"), [(0.7, True), (0.5, True), (0.49, False)], ids=str)
def test_the_minimum_order_is_inclusive_even_below_one_dollar(
    amount: float, approved: bool
) -> None:
    """A size equal to the minimum is approved; a minimum under $1 allows sub-dollar orders."""
    request = TradeRequest(symbol=BTC, side="buy", amount=amount)
    decision = size_trade(request, book(100_000), Regime.TRENDING, limits(min_order_usd=0.5))
    assert decision.approved is approved
    assert decision.max_amount == (amount if approved else 0)


def test_the_reason_names_the_cap_after_the_regime() -> None:
    """CHOPPY's position limit is stated as 12.5% of equity, the cap actually applied."""
    portfolio = book(90_000, BTC_USD=(0.2, 50_000, 0.03))
    decision = size_trade(
        TradeRequest(symbol=BTC, side="buy", amount=50_000), portfolio, Regime.CHOPPY, limits()
    )
    assert decision.reason == "Position limit: BTC-USD capped at 12.5% of equity (CHOPPY regime)"


def test_metrics_of_an_empty_book_are_zero_not_a_division_by_zero() -> None:
    """No equity at all: VaR share and concentration read 0."""
    decision = size_trade(
        TradeRequest(symbol=BTC, side="buy", amount=100), book(0), Regime.TRENDING, limits()
    )
    assert (decision.approved, decision.equity) == (False, 0)
    assert (decision.var_share, decision.concentration) == (0.0, 0.0)


def test_metrics_of_a_tiny_book_are_still_shares() -> None:
    """Half a dollar of equity, all in BTC: concentration 1, VaR share z x sigma."""
    portfolio = book(0, BTC_USD=(0.00001, 50_000, 0.03))
    decision = size_trade(
        TradeRequest(symbol=BTC, side="sell", amount=100), portfolio, Regime.TRENDING, limits()
    )
    assert decision.approved is False  # 0.50 is below the minimum order
    assert decision.concentration == pytest.approx(1.0)
    assert decision.var_share == pytest.approx(Z95 * 0.03)


@pytest.mark.parametrize(("amount", "left"), [(2_500, 2_500), (5_000, 0)], ids=str)
def test_a_sell_lowers_the_position_the_metrics_read(amount: float, left: float) -> None:
    """Selling 2 500 of 5 000 leaves 2 500 (5% of equity); selling it all leaves none."""
    portfolio = book(45_000, BTC_USD=(0.1, 50_000, 0.03))
    decision = size_trade(
        TradeRequest(symbol=BTC, side="sell", amount=amount), portfolio, Regime.TRENDING, limits()
    )
    assert decision.approved is True
    assert decision.concentration == pytest.approx(left / 50_000, abs=1e-12)
    assert decision.var_usd == pytest.approx(Z95 * 0.03 * left, abs=1e-9)


@pytest.mark.parametrize(
    ("side", "portfolio"),
    [("buy", book(10_000_000)), ("sell", book(0, BTC_USD=(100.0, 50_000, 0.03)))],
)
def test_max_order_caps_a_single_order(side: Side, portfolio: Portfolio) -> None:
    """No order, buy or sell, above MAX_ORDER_USD; the binding constraint is max_order."""
    capped = limits(max_position_share=1.0, var_limit_share=1.0, max_order_usd=20_000)
    trade = TradeRequest(symbol=BTC, side=side, amount=50_000)
    decision = size_trade(trade, portfolio, Regime.TRENDING, capped)
    assert decision.approved
    assert decision.max_amount == 20_000
    assert decision.constraint is Constraint.MAX_ORDER
    assert decision.reason == "Order capped at the maximum order of $20,000.00"
