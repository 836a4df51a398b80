"""The paper broker's maths: slippage, fees, rounding against the trader, clamping."""

from __future__ import annotations

from decimal import Decimal

import pytest
from execution.broker import (
    Books,
    Costs,
    Fill,
    Refusal,
    Side,
    apply_fill,
    execution_price,
    fee_of,
    plan_fill,
)

D = Decimal  # short, for the arithmetic below
COSTS = Costs(slippage_bps=D(10), fee_bps=D(25), min_order_amount=D(1))


def books(cash: str = "10000", quantity: str = "0", cost_basis: str = "0") -> Books:
    return Books(
        cash=D(cash),
        realized_pnl=D(0),
        quantity=D(quantity),
        cost_basis=D(cost_basis),
        symbol_realized_pnl=D(0),
    )


def test_slippage_moves_the_price_against_the_trader() -> None:
    """Buys pay more than the quote, sells receive less, by the slippage in bps."""
    assert execution_price("buy", D(100), D(10)) == D("100.1")
    assert execution_price("sell", D(100), D(10)) == D("99.9")


def test_buy_fill_costs_amount_plus_fee() -> None:
    """A buy of 1000 at 100 (+10 bps) takes 1000 + 2.5 fee and buys quantity rounded down."""
    fill = plan_fill("buy", D(1000), D(100), books(), COSTS)
    assert isinstance(fill, Fill)
    assert (fill.filled_amount, fill.fee, fill.price) == (D(1000), D("2.5"), D("100.1"))
    assert fill.quantity == D("9.990009990009")  # 1000 / 100.1, floored to 1e-12
    assert fill.clamped is None


def test_buy_is_clamped_so_amount_plus_fee_fits_the_cash() -> None:
    """Short of cash, the fill shrinks until amount + fee is within the cash, never above."""
    fill = plan_fill("buy", D(5000), D(100), books(cash="1000"), COSTS)
    assert isinstance(fill, Fill)
    assert fill.filled_amount + fill.fee <= D(1000)
    assert D(1000) - (fill.filled_amount + fill.fee) < D("0.0001")
    assert fill.clamped is not None


def test_buy_below_the_minimum_after_clamping_is_refused() -> None:
    """Less cash than the minimum order: refused, with the reason naming cash."""
    outcome = plan_fill("buy", D(100), D(100), books(cash="0.5"), COSTS)
    assert isinstance(outcome, Refusal)
    assert "Insufficient cash" in outcome.reason


def test_sell_quantity_rounds_up_and_is_capped_by_holdings() -> None:
    """A sell takes quantity rounded up, and never more than is held."""
    fill = plan_fill("sell", D(1000), D(100), books(quantity="100", cost_basis="9000"), COSTS)
    assert isinstance(fill, Fill)
    assert fill.quantity == D("10.010010010011")  # 1000 / 99.9, ceiled
    capped = plan_fill("sell", D(10**6), D(100), books(quantity="3", cost_basis="270"), COSTS)
    assert isinstance(capped, Fill)
    assert capped.quantity == D(3)
    assert capped.filled_amount == D("299.7")


def test_apply_buy_then_sell_tracks_average_cost_and_realised_pnl() -> None:
    """Buy fees join the cost basis; a sell releases cost at the average and realises P&L."""
    start = books(cash="10000")
    bought = apply_fill(
        "buy", Fill(filled_amount=D(1000), quantity=D(10), price=D(100), fee=D(2)), start
    )
    assert (bought.cash, bought.quantity, bought.cost_basis) == (D(8998), D(10), D(1002))
    sold = apply_fill(
        "sell", Fill(filled_amount=D(600), quantity=D(4), price=D(150), fee=D(1)), bought
    )
    assert sold.cash == D(8998) + D(600) - D(1)
    assert sold.cost_basis == D("601.2")  # 1002 * 6/10
    assert sold.realized_pnl == D(599) - D("400.8")
    all_out = apply_fill(
        "sell", Fill(filled_amount=D(600), quantity=D(6), price=D(100), fee=D(0)), sold
    )
    assert (all_out.quantity, all_out.cost_basis) == (D(0), D(0))


def test_a_buy_that_fits_the_cash_only_without_its_fee_is_clamped() -> None:
    """1 001 of cash, a buy of 1 000 at 25 bps: the fee is counted, cash never goes below 0."""
    fill = plan_fill("buy", D(1000), D(100), books(cash="1001"), COSTS)
    assert isinstance(fill, Fill)
    assert (fill.filled_amount, fill.fee) == (D("998.50374064"), D("2.49625936"))
    assert fill.clamped == "reduced to the 1001 cash available"
    assert apply_fill("buy", fill, books(cash="1001")).cash == D(0)


def test_a_buy_exactly_covering_amount_and_fee_is_not_clamped() -> None:
    """Cash equal to amount + fee buys the whole amount: the re-check is not strict."""
    fill = plan_fill("buy", D(1000), D(100), books(cash="1002.5"), COSTS)
    assert isinstance(fill, Fill)
    assert (fill.filled_amount, fill.fee, fill.clamped) == (D(1000), D("2.5"), None)


def test_rounding_steps_the_clamped_buy_down_until_the_fee_fits() -> None:
    """Cash finer than 1e-8: the clamped amount plus its rounded-up fee is over; 1e-8 less fits."""
    # Only cash carried beyond 8 decimals (a STARTING_CASH written that finely) needs the step.
    cash = D("1000.144272509")
    fill = plan_fill("buy", D(5000), D(100), books(cash=str(cash)), COSTS)
    assert isinstance(fill, Fill)
    assert (fill.filled_amount, fill.fee) == (D("997.65014713"), D("2.49412537"))
    assert fill.filled_amount + fill.fee <= cash


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("price", ["0", "-1"])
def test_no_fill_at_a_price_of_zero_or_below(side: Side, price: str) -> None:
    """A quote of 0 (or less) is refused, naming the price, on either side."""
    outcome = plan_fill(side, D(100), D(price), books(quantity="5", cost_basis="500"), COSTS)
    assert isinstance(outcome, Refusal)
    assert outcome.reason == f"No tradable price (quoted {price})"


def test_the_fee_is_bps_of_the_amount_rounded_up() -> None:
    """25 bps of 1 000 is 2.5; of 0.01 it is 0.000025, rounded up to 0.00002500."""
    assert fee_of(D(1000), D(25)) == D("2.5")
    assert fee_of(D("0.01"), D(25)) == D("0.00002500")
    assert fee_of(D("0.00000001"), D(25)) == D("0.00000001")


def test_a_sub_dollar_price_fills() -> None:
    """A quote of 0.15 (DOGE's range) is a price: the buy fills."""
    fill = plan_fill("buy", D(100), D("0.15"), books(), COSTS)
    assert isinstance(fill, Fill)
    assert fill.price == D("0.150150000000")


def test_the_amount_is_floored_to_the_cent_unit() -> None:
    """An amount finer than 1e-8 is rounded down, never up."""
    fill = plan_fill("buy", D("100.000000009"), D(100), books(), COSTS)
    assert isinstance(fill, Fill)
    assert fill.filled_amount == D("100.00000000")


def test_the_step_down_also_runs_below_one_dollar() -> None:
    """A clamped buy under 1 USD (minimum 0.01) still never takes amount + fee past the cash."""
    costs = Costs(slippage_bps=D(10), fee_bps=D(25), min_order_amount=D("0.01"))
    cash = D("0.497236329")
    fill = plan_fill("buy", D(5), D(100), books(cash=str(cash)), costs)
    assert isinstance(fill, Fill)
    assert fill.filled_amount == D("0.49599632")
    assert fill.filled_amount + fill.fee <= cash


def test_a_sell_realises_pnl_on_the_symbol_too() -> None:
    """The symbol's realised P&L moves with the account's, by the same gain."""
    held = books(quantity="10", cost_basis="1000")
    sold = apply_fill(
        "sell", Fill(filled_amount=D(600), quantity=D(4), price=D(150), fee=D(1)), held
    )
    assert sold.symbol_realized_pnl == sold.realized_pnl == D(599) - D(400)


def test_the_execution_price_rounds_against_the_trader() -> None:
    """Past 1e-12 a buy's price rounds up and a sell's down, never to the nearest."""
    price = D("33.333333333333")
    assert execution_price("buy", price, D(10)) == D("33.366666666667")  # ...666333 up
    assert execution_price("sell", price, D(10)) == D("33.299999999999")  # ...999667 down


def test_an_order_of_exactly_the_minimum_fills() -> None:
    """The minimum order is inclusive: a buy of exactly 1 fills."""
    fill = plan_fill("buy", D(1), D(100), books(), COSTS)
    assert isinstance(fill, Fill)
    assert fill.filled_amount == D(1)


def test_selling_exactly_what_is_held_is_not_reduced() -> None:
    """A sell whose quantity is all that is held fills as asked, not 'reduced to ... held'."""
    at_par = Costs(slippage_bps=D(0), fee_bps=D(25), min_order_amount=D(1))
    fill = plan_fill("sell", D(200), D(100), books(quantity="2", cost_basis="180"), at_par)
    assert isinstance(fill, Fill)
    assert (fill.quantity, fill.filled_amount, fill.clamped) == (D(2), D(200), None)


def test_a_sell_capped_by_holdings_rounds_its_amount_down() -> None:
    """All of 1.00000000006 held at 100 is worth 100.000000006: filled as 100.00000000."""
    at_par = Costs(slippage_bps=D(0), fee_bps=D(25), min_order_amount=D(1))
    held = books(quantity="1.00000000006", cost_basis="90")
    fill = plan_fill("sell", D(1000), D(100), held, at_par)
    assert isinstance(fill, Fill)
    assert (fill.quantity, fill.filled_amount) == (D("1.00000000006"), D("100.00000000"))


def test_a_buy_too_small_for_one_unit_of_quantity_is_refused() -> None:
    """At 1e13 a buy of 1 is under 1e-12 of the asset: refused, never a fill of nothing."""
    outcome = plan_fill("buy", D(1), D("1e13"), books(), COSTS)
    assert isinstance(outcome, Refusal)
