"""Pre-trade sizing as pure functions: the largest amount every limit allows, and why.

A buy of `x` USD is bounded by, in the order ties are named:
  cash            x <= cash / (1 + buy_fee_rate)          (room left for the fee)
  var_limit       z * sigma_t * (held_t + x) + VaR(others) <= var_limit_share * equity'
  position_limit  held_t + x <= max_position_share * regime multiplier * equity'
  regime          x <= amount * regime multiplier
  max_order       x <= max_order_usd
A sell is bounded only by what is held (spot, no shorting) and the largest order:
selling reduces exposure, so the VaR, position and regime limits never block it.

A trade moves value between cash and the position at the quoted price; the fee it pays
(counted at `buy_fee_rate`) is lost, so the limits are shares of the post-trade equity
`equity' = equity - buy_fee_rate * x`, as Execution's fill-time re-check counts them
(`shared.limits`). Amounts below the request are rounded down to cents. Below the
minimum order the trade is refused and `max_amount` is 0.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from risk_management.limits import Limits, Portfolio, TradeRequest
from shared.limits import buy_room
from shared.market.models import Regime
from shared.var import portfolio_var, z_score


class Constraint(enum.StrEnum):
    """What bound the approved amount (machine-readable `binding_constraint`)."""

    NONE = "none"
    CASH = "cash"
    HOLDINGS = "holdings"
    VAR_LIMIT = "var_limit"
    POSITION_LIMIT = "position_limit"
    REGIME = "regime"
    MAX_ORDER = "max_order"
    MINIMUM_ORDER = "minimum_order"
    NO_PRICE = "no_price"
    UNPRICED_HOLDING = "unpriced_holding"


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The verdict and the post-trade risk of the portfolio it leaves."""

    approved: bool
    max_amount: float
    constraint: Constraint
    reason: str
    equity: float
    var_usd: float
    var_share: float
    concentration: float


def buy_bounds(
    request: TradeRequest, portfolio: Portfolio, regime: Regime, limits: Limits
) -> dict[Constraint, float]:
    """The largest buy (USD) each limit allows on its own."""
    multiplier = limits.multiplier(regime)
    room = buy_room(
        symbol=request.symbol,
        cash=portfolio.cash,
        values=portfolio.values(),
        sigmas=portfolio.sigmas(),
        cap_share=limits.max_position_share * multiplier,
        var_limit_share=limits.var_limit_share,
        z=z_score(limits.var_confidence),
        buy_fee_rate=limits.buy_fee_rate,
        fee_rate=limits.buy_fee_rate,
    )
    return {
        Constraint.CASH: room.cash,
        Constraint.VAR_LIMIT: room.var_limit,
        Constraint.POSITION_LIMIT: room.position_limit,
        Constraint.REGIME: request.amount * multiplier,
        Constraint.MAX_ORDER: limits.max_order_usd,
    }


def sell_bounds(
    request: TradeRequest, portfolio: Portfolio, limits: Limits
) -> dict[Constraint, float]:
    """The largest sell (USD) allowed: the value of what is held, within the largest order."""
    return {
        Constraint.HOLDINGS: portfolio.holdings[request.symbol].value,
        Constraint.MAX_ORDER: limits.max_order_usd,
    }


def size_trade(
    request: TradeRequest, portfolio: Portfolio, regime: Regime, limits: Limits
) -> Decision:
    """Size `request` against every limit; name the one that binds."""
    if request.side == "buy":
        bounds = buy_bounds(request, portfolio, regime, limits)
    else:
        bounds = sell_bounds(request, portfolio, limits)
    binding, bound = min(bounds.items(), key=lambda item: item[1])  # first wins a tie
    if bound >= request.amount:
        binding, size = Constraint.NONE, request.amount
    else:
        size = min(request.amount, math.floor(max(bound, 0.0) * 100) / 100)
    reason = describe(binding, request, portfolio, regime, limits, size)
    approved = size > 0 and size >= limits.min_order_usd
    if not approved:
        reason = below_minimum(binding, reason, size, limits)
        binding = binding if binding is not Constraint.NONE else Constraint.MINIMUM_ORDER
        size = 0.0
    return _decision(approved, size, binding, reason, request, portfolio, limits)


def _decision(
    approved: bool,
    size: float,
    binding: Constraint,
    reason: str,
    request: TradeRequest,
    portfolio: Portfolio,
    limits: Limits,
) -> Decision:
    equity, after = post_trade_values(request, portfolio, size)
    var_usd = portfolio_var(after, portfolio.sigmas(), z_score(limits.var_confidence))
    return Decision(
        approved=approved,
        max_amount=size,
        constraint=binding,
        reason=reason,
        equity=equity,
        var_usd=var_usd,
        var_share=var_usd / equity if equity > 0 else 0.0,
        concentration=after[request.symbol] / equity if equity > 0 else 0.0,
    )


def post_trade_values(
    request: TradeRequest, portfolio: Portfolio, size: float
) -> tuple[float, dict[str, float]]:
    """Equity (unchanged by a trade at the quoted price) and each position's value after it."""
    after = portfolio.values()
    after[request.symbol] += size if request.side == "buy" else -size
    after[request.symbol] = max(0.0, after[request.symbol])
    return portfolio.equity, after


def describe(
    binding: Constraint,
    request: TradeRequest,
    portfolio: Portfolio,
    regime: Regime,
    limits: Limits,
    size: float,
) -> str:
    """The binding constraint in plain words."""
    # Only the binding constraint's text is formatted: this runs on every trade.
    match binding:
        case Constraint.REGIME:
            return f"Position size reduced due to {regime} regime"
        case Constraint.CASH:
            return (
                f"Insufficient cash: ${portfolio.cash:,.2f} covers ${size:,.2f} "
                f"plus a {limits.buy_fee_rate:.2%} fee reserve"
            )
        case Constraint.HOLDINGS:
            held = portfolio.holdings[request.symbol]
            if held.quantity > 0:
                return f"Sell capped at the held quantity of {request.symbol} ({held.quantity:g})"
            return f"Nothing to sell: no {request.symbol} held"
        case Constraint.VAR_LIMIT:
            return (
                f"VaR limit: {limits.var_confidence:.0%} one-day VaR capped at "
                f"{limits.var_limit_share * 100:g}% of equity"
            )
        case Constraint.POSITION_LIMIT:
            cap = limits.max_position_share * limits.multiplier(regime)
            return (
                f"Position limit: {request.symbol} capped at {cap * 100:g}% of equity "
                f"({regime} regime)"
            )
        case Constraint.MAX_ORDER:
            return f"Order capped at the maximum order of ${limits.max_order_usd:,.2f}"
        case Constraint.NONE:
            return "Approved in full"
        case _:
            raise ValueError(f"{binding} is not a sizing bound")


def below_minimum(binding: Constraint, reason: str, size: float, limits: Limits) -> str:
    """Why a trade under the minimum order is refused."""
    minimum = f"the minimum order of ${limits.min_order_usd:,.2f}"
    if binding is Constraint.NONE:
        return f"Amount ${size:,.2f} is below {minimum}"
    return f"{reason}; ${size:,.2f} is below {minimum}"


def no_price(symbol: str, detail: str) -> str:
    """Why a trade that could not be priced is refused: it is never sized blind."""
    return f"No price for {symbol} from the gateway or the market source ({detail}); not sized"
