"""The paper broker: what a fill costs and what it does to the books, as pure functions.

Everything rounds against the trader: the execution price carries the slippage, fees
round up, a buy's quantity rounds down and a sell's rounds up. A fill is clamped to the
cash or holdings on the books at the moment of writing (a concurrent trade may have
spent them since Risk looked), and refused when that leaves less than the minimum order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from execution.protections import Marks
from shared.trading import TradingState

Side = Literal["buy", "sell"]
# Quote-currency amounts are kept to 1e-8 (not to the cent: sub-cent fees and crypto
# notionals add up), quantities and prices to 1e-12.
AMOUNT_STEP = Decimal("0.00000001")
UNIT = Decimal("0.000000000001")
BPS = Decimal(10_000)


@dataclass(frozen=True, kw_only=True)
class Costs:
    slippage_bps: Decimal
    fee_bps: Decimal
    min_order_amount: Decimal


@dataclass(frozen=True, kw_only=True)
class Fill:
    filled_amount: Decimal  # quote currency, fee excluded
    quantity: Decimal
    price: Decimal  # after slippage
    fee: Decimal
    clamped: str | None = None  # why less than approved was filled, if it was


@dataclass(frozen=True, kw_only=True)
class Refusal:
    reason: str


@dataclass(frozen=True, kw_only=True)
class Books:
    """The account and one symbol's position, as locked for a trade."""

    cash: Decimal
    realized_pnl: Decimal
    quantity: Decimal
    cost_basis: Decimal
    symbol_realized_pnl: Decimal
    trading_state: TradingState = TradingState.ACTIVE
    trading_reason: str = ""
    # Every position as locked, the traded one included: (quantity, cost basis) by symbol.
    held: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    # The protections' reference points on the account row.
    marks: Marks = field(default_factory=Marks)


def execution_price(side: Side, price: Decimal, slippage_bps: Decimal) -> Decimal:
    """The quoted price moved against the trader by the slippage."""
    factor = 1 + slippage_bps / BPS if side == "buy" else 1 - slippage_bps / BPS
    return (price * factor).quantize(UNIT, ROUND_CEILING if side == "buy" else ROUND_FLOOR)


def fee_of(amount: Decimal, fee_bps: Decimal) -> Decimal:
    return (amount * fee_bps / BPS).quantize(AMOUNT_STEP, ROUND_CEILING)


def plan_fill(
    side: Side, amount: Decimal, price: Decimal, books: Books, costs: Costs
) -> Fill | Refusal:
    """Fill `amount` (already capped by Risk) at `price` within what the books hold."""
    exec_price = execution_price(side, price, costs.slippage_bps)
    if exec_price <= 0:
        return Refusal(reason=f"No tradable price (quoted {price})")
    amount = amount.quantize(AMOUNT_STEP, ROUND_FLOOR)
    clamped = None
    if side == "buy":
        rate = costs.fee_bps / BPS
        if amount + fee_of(amount, costs.fee_bps) > books.cash:
            amount = (books.cash / (1 + rate)).quantize(AMOUNT_STEP, ROUND_FLOOR)
            while amount > 0 and amount + fee_of(amount, costs.fee_bps) > books.cash:
                amount -= AMOUNT_STEP
            clamped = f"reduced to the {books.cash} cash available"
        quantity = (amount / exec_price).quantize(UNIT, ROUND_FLOOR)
        short_of = "cash"
    else:
        quantity = (amount / exec_price).quantize(UNIT, ROUND_CEILING)
        if quantity > books.quantity:
            quantity = books.quantity
            amount = (quantity * exec_price).quantize(AMOUNT_STEP, ROUND_FLOOR)
            clamped = f"reduced to the {books.quantity} held"
        short_of = "holdings"
    if amount < costs.min_order_amount or quantity <= 0:
        return Refusal(
            reason=f"Insufficient {short_of}: {amount} fillable, "
            f"below the minimum order of {costs.min_order_amount}"
        )
    fee = fee_of(amount, costs.fee_bps)
    return Fill(filled_amount=amount, quantity=quantity, price=exec_price, fee=fee, clamped=clamped)


def apply_fill(side: Side, fill: Fill, books: Books) -> Books:
    """The books after `fill`: cash, average-cost position and realised P&L."""
    if side == "buy":
        return Books(
            cash=books.cash - fill.filled_amount - fill.fee,
            realized_pnl=books.realized_pnl,
            quantity=books.quantity + fill.quantity,
            cost_basis=books.cost_basis + fill.filled_amount + fill.fee,
            symbol_realized_pnl=books.symbol_realized_pnl,
        )
    # The cost of what is sold leaves at the average cost; all of it when all is sold.
    if fill.quantity >= books.quantity:
        released = books.cost_basis
    else:
        released = (books.cost_basis * fill.quantity / books.quantity).quantize(AMOUNT_STEP)
    realized = fill.filled_amount - fill.fee - released
    return Books(
        cash=books.cash + fill.filled_amount - fill.fee,
        realized_pnl=books.realized_pnl + realized,
        quantity=books.quantity - fill.quantity,
        cost_basis=books.cost_basis - released,
        symbol_realized_pnl=books.symbol_realized_pnl + realized,
    )
