"""Execution's endpoints: trade, the order history and the valued portfolio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from execution.ledger import Ledger
from execution.orders import OrderBook
from execution.portfolio import PortfolioValuer
from execution.schemas import (
    Order,
    OrderList,
    Portfolio,
    TradeRequest,
    TradingStateHistory,
    TradingStateIn,
    TradingStateOut,
)
from execution.service import TradeService
from execution.trading_state import TradingStateStore
from shared.bodies import json_body, read_body

router = APIRouter(prefix="/api/v1", tags=["execution"])


# `async def`: FastAPI would run a plain `def` dependency in the thread pool per request.
async def get_orders(request: Request) -> OrderBook:
    return request.app.state.orders  # type: ignore[no-any-return]


async def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger  # type: ignore[no-any-return]


async def get_valuer(request: Request) -> PortfolioValuer:
    return request.app.state.valuer  # type: ignore[no-any-return]


async def get_trading(request: Request) -> TradingStateStore:
    return request.app.state.trading  # type: ignore[no-any-return]


async def get_operator() -> str:
    """Who changes the trading state, for its history.

    Until API keys exist there is no one to name; with them this is the admin key's id
    (the PUT route then declares the admin role).
    """
    return "operator"


OrdersDep = Annotated[OrderBook, Depends(get_orders)]
TradingDep = Annotated[TradingStateStore, Depends(get_trading)]
OperatorDep = Annotated[str, Depends(get_operator)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
ValuerDep = Annotated[PortfolioValuer, Depends(get_valuer)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Same key and body within 24 h: the stored answer, no second fill",
    ),
]


@router.post(
    "/trade",
    status_code=201,
    response_model=Order,
    openapi_extra=json_body(TradeRequest),
    responses={
        422: {"description": "Invalid body, or an Idempotency-Key reused with another body"},
        409: {
            "description": "The trading state refuses the trade (recorded as REJECTED), "
            "or the same Idempotency-Key is still in flight"
        },
        503: {"description": "Risk unreachable: no trade; see Retry-After"},
    },
)
async def trade(request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    """Ask Risk, fill on the paper broker, record the order (FILLED or REJECTED)."""
    # The hot path: the body read by `read_body`, the service straight from the app's
    # state rather than through `Depends` (see `shared.bodies`).
    body = await read_body(request, TradeRequest)
    trades: TradeService = request.app.state.trades
    answer = await trades.trade(body, idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(
        answer.body, status_code=answer.status_code, media_type="application/json", headers=headers
    )


@router.get("/orders", responses={422: {"description": "Invalid limit or cursor"}})
async def list_orders(
    orders: OrdersDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OrderList:
    """Orders newest first; follow `next_cursor` for older ones."""
    records, next_cursor = await orders.page(limit=limit, cursor=cursor)
    return OrderList(orders=[Order.of(r) for r in records], next_cursor=next_cursor)


@router.get("/orders/{order_id}", responses={404: {"description": "No such order"}})
async def get_order(order_id: str, orders: OrdersDep) -> Order:
    """One order by its id."""
    return Order.of(await orders.get(order_id))


@router.get("/portfolio")
async def portfolio(ledger: LedgerDep, valuer: ValuerDep) -> Portfolio:
    """Cash, positions at market prices, realised and unrealised P&L, equity."""
    return await valuer.value(await ledger.holdings())


@router.get("/trading-state")
async def trading_state(trading: TradingDep) -> TradingStateOut:
    """The trading state in force (ACTIVE, REDUCING or HALTED), who set it, when and why."""
    return TradingStateOut.of(await trading.current())


@router.put("/trading-state", responses={422: {"description": "Unknown state or no reason"}})
async def set_trading_state(
    change: TradingStateIn, trading: TradingDep, operator: OperatorDep
) -> TradingStateOut:
    """Halt, reduce or resume trading; the only way to resume after a protection tripped."""
    return TradingStateOut.of(await trading.change(change.state, change.reason, operator))


@router.get("/trading-state/history", responses={422: {"description": "Invalid limit"}})
async def trading_state_history(
    trading: TradingDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> TradingStateHistory:
    """Every change of the trading state, newest first: who, when and why."""
    changes = await trading.history(limit)
    return TradingStateHistory(changes=[TradingStateOut.of(c) for c in changes])
