"""`buy_room`: each limit's room for a buy, against the formulas in shared/limits.py."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shared.limits import BuyRoom, buy_room
from shared.var import z_score

Z = z_score(0.95)


def room(**changes: Any) -> BuyRoom:
    """BTC-USD's room in 10 000 of equity: 7 000 cash, 1 000 BTC (3%/day), 2 000 ETH (2%)."""
    args: dict[str, Any] = {
        "symbol": "BTC-USD",
        "cash": 7_000.0,
        "values": {"BTC-USD": 1_000.0, "ETH-USD": 2_000.0},
        "sigmas": {"BTC-USD": 0.03, "ETH-USD": 0.02},
        "cap_share": 0.25,
        "var_limit_share": 0.05,
        "z": Z,
        "buy_fee_rate": 0.006,
    }
    return buy_room(**(args | changes))


def test_with_the_fee_each_limit_is_a_share_of_the_equity_left_after_it() -> None:
    """z.s.(held + x) + VaR(others) = share.(E - fee.x); held + x = cap.(E - fee.x)."""
    fee = 0.0025
    got = room(fee_rate=fee)
    var_others = Z * 0.02 * 2_000
    var = (0.05 * 10_000 - var_others - Z * 0.03 * 1_000) / (Z * 0.03 + 0.05 * fee)
    assert got.var_limit == pytest.approx(var, rel=1e-12)
    assert got.position_limit == pytest.approx((2_500 - 1_000) / (1 + 0.25 * fee), rel=1e-12)
    assert got.cash == pytest.approx(7_000 / 1.006, rel=1e-12)


def test_without_the_fee_the_limits_are_the_plain_shares() -> None:
    """Risk's view (fee_rate 0): the position cap and VaR limit of the equity as it is."""
    got = room()
    var = (0.05 * 10_000 - Z * 0.02 * 2_000 - Z * 0.03 * 1_000) / (Z * 0.03)
    assert got.var_limit == pytest.approx(var, rel=1e-12)
    assert got.position_limit == 1_500


@pytest.mark.parametrize("fee", [0.0, 0.0025])
def test_a_symbol_not_held_and_without_volatility(fee: float) -> None:
    """Not in the books: nothing held (the full cap is room); no volatility: no VaR bound."""
    got = room(values={"ETH-USD": 3_000.0}, sigmas={"ETH-USD": 0.02}, fee_rate=fee, cash=7_000.0)
    assert got.position_limit == pytest.approx(2_500 / (1 + 0.25 * fee), rel=1e-12)
    assert got.var_limit == math.inf


def test_a_tiny_var_room_still_pays_for_the_fee() -> None:
    """Half a dollar of VaR room is still reduced by the fee's share of the limit."""
    cash = 10 * Z * 0.03  # VaR room without the fee: 0.05 * cash / (z * 0.03) = 0.5
    got = room(cash=cash, values={}, sigmas={"BTC-USD": 0.03}, fee_rate=0.0025)
    assert got.var_limit == pytest.approx(0.5 * Z * 0.03 / (Z * 0.03 + 0.05 * 0.0025))


def test_an_empty_book_has_no_room() -> None:
    """No cash, no positions: no room under any limit."""
    got = room(cash=0.0, values={}, sigmas={"BTC-USD": 0.03})
    assert (got.cash, got.var_limit, got.position_limit) == (0, 0, 0)


def test_a_position_over_its_cap_has_no_room() -> None:
    """Held beyond the cap (3 000 of 10 000 at 25%): no room, never negative."""
    got = room(cash=5_000.0, values={"BTC-USD": 3_000.0, "ETH-USD": 2_000.0})
    assert got.position_limit == 0
