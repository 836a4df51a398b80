"""The room a buy has under the position, VaR and cash limits: one function, two callers.

Risk sizes a trade with it against the books it was sent; Execution applies it again
under the ledger's write lock, against the books as they are at the fill (concurrent
fills included), so no interleaving of trades can take a position past its limits.
The VaR model is `shared.var`'s (parametric, positions perfectly correlated).

A buy of `x` USD of `symbol` is bounded by:
  cash      x <= cash / (1 + buy_fee_rate)                   (room left for the fee)
  var       z*sigma_t*(held_t + x) + VaR(others) <= var_share * (equity - fee_rate*x)
  position  held_t + x <= cap_share * (equity - fee_rate*x)
`fee_rate` is what a buy costs the equity: Risk counts its `buy_fee_rate` (the fee it
reserves, at least the broker's), Execution the broker's fee it is about to pay, so a
buy Risk sized exactly still fits at the fill on unchanged books.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from shared.var import max_buy_under_var, portfolio_var


@dataclass(frozen=True, slots=True)
class BuyRoom:
    """The largest buy (USD) each limit allows on its own."""

    cash: float
    var_limit: float
    position_limit: float


def buy_room(
    *,
    symbol: str,
    cash: float,
    values: Mapping[str, float],
    sigmas: Mapping[str, float],
    cap_share: float,
    var_limit_share: float,
    z: float,
    buy_fee_rate: float,
    fee_rate: float = 0.0,
) -> BuyRoom:
    """The room for a buy of `symbol`, given the value and daily volatility of every
    position (`symbol`'s included, 0 if not held) and `cap_share` (the regime's cap)."""
    equity = cash + math.fsum(values.values())
    held = values.get(symbol, 0.0)
    sigma = sigmas.get(symbol, 0.0)
    others = {s: v for s, v in values.items() if s != symbol}
    var_of_others = portfolio_var(others, sigmas, z)
    var_room = max_buy_under_var(
        limit_usd=var_limit_share * max(equity, 0.0),
        var_of_others=var_of_others,
        held_value=held,
        sigma_daily=sigma,
        z=z,
    )
    if fee_rate and math.isfinite(var_room) and var_room > 0:
        # The fee lowers the equity the limit is a share of: the same room, per dollar
        # bought, also pays var_share * fee_rate of lost limit.
        per_dollar = z * sigma + var_limit_share * fee_rate
        var_room = var_room * z * sigma / per_dollar
    position_room = max(0.0, (cap_share * equity - held) / (1 + cap_share * fee_rate))
    return BuyRoom(cash=cash / (1 + buy_fee_rate), var_limit=var_room, position_limit=position_room)
