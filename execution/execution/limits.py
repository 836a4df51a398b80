"""Risk's limits applied again at the fill, under the ledger's write lock.

Risk decides against the books Execution read before asking; concurrent trades may fill
in between. So a buy is sized once more inside the fill's transaction, with the same
function Risk uses (`shared.limits.buy_room`), on the books as they are now and at the
fill price: the regime's position cap, the VaR limit and the cash reserve Risk applied,
with the prices and volatilities Risk used. A position bought since Risk looked (so
absent from its valuation) is valued at its average fill price with the highest
volatility Risk reported. Sells only shrink positions and are never limited here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from execution.broker import (
    AMOUNT_STEP,
    BPS,
    Books,
    Costs,
    Fill,
    Refusal,
    execution_price,
    plan_fill,
)
from execution.ledger import Holdings
from shared.limits import buy_room
from shared.var import z_score


@dataclass(frozen=True, kw_only=True)
class DecidedLimits:
    """The limits and valuation of one Risk decision, as its answer states them."""

    cap_share: float  # the position cap after the regime multiplier
    var_limit_share: float
    var_confidence: float
    buy_fee_rate: float
    min_order_usd: float
    prices: Mapping[str, float]
    sigmas: Mapping[str, float]


def decided_limits(decision: Mapping[str, Any]) -> DecidedLimits | None:
    """The limits Risk applied, or None when its answer does not state them."""
    limits, valuation = decision.get("limits"), decision.get("valuation")
    if not isinstance(limits, dict) or not isinstance(valuation, dict) or not valuation:
        return None
    try:
        found = DecidedLimits(
            cap_share=float(limits["max_position_share"]),
            var_limit_share=float(limits["var_limit_share"]),
            var_confidence=float(limits["var_confidence"]),
            buy_fee_rate=float(limits["buy_fee_rate"]),
            min_order_usd=float(limits["min_order_usd"]),
            prices={s: float(v["price"]) for s, v in valuation.items()},
            sigmas={s: float(v["volatility_daily"]) for s, v in valuation.items()},
        )
    except (KeyError, TypeError, ValueError):
        return None
    numbers = [found.cap_share, found.var_limit_share, found.buy_fee_rate, *found.sigmas.values()]
    if not all(math.isfinite(n) and n >= 0 for n in [*numbers, *found.prices.values()]):
        return None
    if not 0 < found.var_confidence < 1:  # VaR's quantile is undefined outside (0, 1)
        return None
    return found


def room_at_fill(
    symbol: str, books: Books, limits: DecidedLimits, fill_price: Decimal, fee_rate: Decimal
) -> tuple[Decimal, str]:
    """The largest buy (USD) the limits allow on the locked books, and the one binding."""
    fallback_sigma = max(limits.sigmas.values())
    values: dict[str, float] = {}
    sigmas: dict[str, float] = {symbol: limits.sigmas.get(symbol, fallback_sigma)}
    for held, (quantity, cost_basis) in books.held.items():
        if quantity <= 0:
            continue
        if held == symbol:
            price = float(fill_price)
        elif held in limits.prices:
            price = limits.prices[held]
        else:  # bought since Risk looked: its average fill price (the fee taken out)
            price = float(cost_basis / quantity / (1 + fee_rate))
        values[held] = float(quantity) * price
        sigmas[held] = limits.sigmas.get(held, fallback_sigma)
    room = buy_room(
        symbol=symbol,
        cash=float(books.cash),
        values=values,
        sigmas=sigmas,
        cap_share=limits.cap_share,
        var_limit_share=limits.var_limit_share,
        z=z_score(limits.var_confidence),
        buy_fee_rate=limits.buy_fee_rate,
        fee_rate=float(fee_rate),
    )
    bounds = {
        "position_limit": room.position_limit,
        "var_limit": room.var_limit,
        "cash": room.cash,
    }
    binding, bound = min(bounds.items(), key=lambda item: item[1])
    if not math.isfinite(bound):
        return Decimal("1e15"), binding
    return Decimal(repr(max(bound, 0.0))).quantize(AMOUNT_STEP, ROUND_FLOOR), binding


def limited_reason(binding: str, room: Decimal, limits: DecidedLimits, *, changed: bool) -> str:
    """Why a buy was cut at the fill: the books changed since Risk decided, or (on the
    same books) the fill price and the fee leave less room than Risk's quote did."""
    match binding:
        case "position_limit":
            what = f"the position cap of {limits.cap_share * 100:g}% of equity"
        case "var_limit":
            what = f"the VaR limit of {limits.var_limit_share * 100:g}% of equity"
        case _:
            what = f"the cash left after a {limits.buy_fee_rate:.2%} fee reserve"
    if changed:
        why = "against the books as they are now (other trades filled since Risk decided)"
    else:
        why = "at the fill price, after the fee (Risk valued the trade at the quote)"
    return f"re-checked at fill {why}: {what} leaves room for {room:f}"  # never 0E-8


def plan_within_limits(
    symbol: str,
    amount: Decimal,
    price: Decimal,
    books: Books,
    limits: DecidedLimits,
    costs: Costs,
    *,
    changed: bool,
) -> Fill | Refusal:
    """A buy sized again by Risk's limits on the locked books, then planned by the broker."""
    fill_price = execution_price("buy", price, costs.slippage_bps)
    room, binding = room_at_fill(symbol, books, limits, fill_price, costs.fee_bps / BPS)
    if room >= amount:
        return plan_fill("buy", amount, price, books, costs)
    why = limited_reason(binding, room, limits, changed=changed)
    if room < Decimal(repr(limits.min_order_usd)):
        return Refusal(reason=f"{why}, below the minimum order of {limits.min_order_usd:g}")
    outcome = plan_fill("buy", room, price, books, costs)
    if isinstance(outcome, Refusal):
        return outcome
    return replace(outcome, clamped="; ".join(filter(None, [why, outcome.clamped])))


def moved(seen: Holdings, books: Books) -> bool:
    """Whether other trades filled between the books Risk was sent and the locked ones."""
    if seen.cash != books.cash:
        return True
    held = {s: q for s, (q, _) in books.held.items() if q > 0}
    return held != {s: p.quantity for s, p in seen.positions.items() if p.quantity > 0}
