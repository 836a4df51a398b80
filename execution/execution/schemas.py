"""The Execution API's bodies: the trade request, orders, the order list and the portfolio."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from execution.orders import Listed, OrderRecord
from execution.trading_state import StateChange
from shared.market.models import UsdSymbol, utc_iso
from shared.trading import TradingState

PriceStatus = Literal["live", "stale", "missing"]


class TradeRequest(BaseModel):
    """A market order for `amount` of quote currency (USD) of `symbol`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"symbol": "BTC-USD", "side": "buy", "amount": 1000}]},
    )

    symbol: UsdSymbol = Field(description="Coinbase product id, BASE-QUOTE upper case, USD quoted")
    side: Literal["buy", "sell"]
    # Strict: `true` or "1000" are refused rather than read as 1.0 and 1000.
    amount: float = Field(
        gt=0, le=1e12, strict=True, allow_inf_nan=False, description="Notional in USD"
    )


class Order(BaseModel):
    """One trade attempt: FILLED, or REJECTED with the reason."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_id": "0b6d7a8e-5f1c-4c3e-9a51-7f0f3b2f8c11",
                    "symbol": "BTC-USD",
                    "side": "buy",
                    "status": "FILLED",
                    "requested_amount": 1000.0,
                    "filled_amount": 700.0,
                    "quantity": 0.010494752624,
                    "price": 66700.0,
                    "fee": 0.7,
                    "reason": "Position size reduced due to CHOPPY regime",
                    "risk": {"approved": True, "max_amount": 700.0, "price": 66666.67},
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "created_at": "2025-01-01T12:00:00.123456Z",
                }
            ]
        }
    )

    order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    status: Literal["FILLED", "REJECTED"]
    requested_amount: float
    filled_amount: float = Field(description="Quote currency, fee excluded")
    quantity: float = Field(description="Base currency bought or sold")
    price: float | None = Field(description="Execution price, slippage included")
    fee: float
    reason: str
    risk: dict[str, Any] | None = Field(description="Risk's decision as received")
    trace_id: str | None
    created_at: str
    account: int | None = Field(
        default=None,
        description="The paper account the order was placed on: 1 the first, one more after"
        " each `POST /api/v1/account/reset`. Listed and looked-up orders carry it; the"
        " trade's own answer does not.",
    )

    @classmethod
    def of(cls, listed: Listed) -> Order:
        return cls.model_validate(order_fields(listed.record) | {"account": listed.account})


def order_fields(record: OrderRecord) -> dict[str, Any]:
    """`Order`'s fields of `record`, ready for JSON: the trade's answer skips the model."""
    return {
        "order_id": record.order_id,
        "symbol": record.symbol,
        "side": "buy" if record.side == "buy" else "sell",
        "status": record.status,
        "requested_amount": float(record.requested_amount),
        "filled_amount": float(record.filled_amount),
        "quantity": float(record.quantity),
        "price": None if record.price is None else float(record.price),
        "fee": float(record.fee),
        "reason": record.reason,
        "risk": record.risk,
        "trace_id": record.trace_id,
        "created_at": utc_iso(record.created_at),
    }


class OrderList(BaseModel):
    orders: list[Order]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class PositionView(BaseModel):
    symbol: str
    quantity: float
    average_cost: float = Field(description="Cost basis per unit, buy fees included")
    cost_basis: float
    price: float | None = Field(description="The market price used, if one could be had")
    price_status: PriceStatus
    price_source: str | None
    price_time: str | None
    market_value: float | None
    unrealized_pnl: float | None
    realized_pnl: float


class ClosedPosition(BaseModel):
    """A symbol traded on this account and no longer held: what it realised."""

    symbol: str
    realized_pnl: float


class Portfolio(BaseModel):
    """The paper account valued at current market prices."""

    account: int = Field(description="1 the first paper account, one more after each reset")
    cash: float
    positions: list[PositionView] = Field(description="Open positions (quantity above zero)")
    closed: list[ClosedPosition] = Field(
        description="Positions sold down to zero on this account, with their realised P&L"
    )
    positions_value: float
    realized_pnl: float
    unrealized_pnl: float
    equity: float = Field(description="Cash plus positions (missing prices at cost)")
    starting_cash: float
    complete: bool = Field(description="False when a price was stale or missing")
    warnings: list[str]
    valued_at: str


class TradingStateIn(BaseModel):
    """An operator's change of the trading state."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"state": "HALTED", "reason": "exchange incident"}]},
    )

    state: TradingState = Field(
        description="ACTIVE trades; REDUCING refuses buys (sells go through); HALTED refuses all"
    )
    reason: str = Field(min_length=1, max_length=500, description="Why, for the history")


class TradingStateOut(BaseModel):
    """The trading state in force, and who set it, when and why."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "state": "HALTED",
                    "reason": "equity 94,800.00 is 5.20% below the day's start 100,000.00",
                    "changed_at": "2025-01-01T12:00:00.123456Z",
                    "changed_by": "protection:daily_loss",
                }
            ]
        }
    )

    state: TradingState
    reason: str
    changed_at: str = Field(description="ISO-8601 UTC")
    changed_by: str = Field(description="Who: the operator's key, or protection:<name>")

    @classmethod
    def of(cls, change: StateChange) -> TradingStateOut:
        return cls(
            state=change.state,
            reason=change.reason,
            changed_at=utc_iso(change.changed_at),
            changed_by=change.changed_by,
        )


class TradingStateHistory(BaseModel):
    """Every change of the trading state, newest first."""

    changes: list[TradingStateOut]


class HistoryPoint(BaseModel):
    timestamp: str
    equity: float
    cash: float
    positions_value: float
    realized_pnl: float
    trigger: Literal["fill", "timer", "reset"] = Field(
        description="Taken after a fill, on the timer, or when the account was (re)opened"
    )


class PortfolioHistory(BaseModel):
    """The current account's equity over time, newest first, a page at a time."""

    account: int
    points: list[HistoryPoint]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class ResetAnswer(BaseModel):
    """The account closed by a reset and the one opened in its place."""

    closed_account: int
    account: int
    starting_cash: float
    reset_at: str
