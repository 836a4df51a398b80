"""Execution's endpoints: trade, the order history and the valued portfolio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from execution.deps import LedgerDep, OrdersDep, TradesDep, ValuerDep
from execution.schemas import Order, OrderList, Portfolio, TradeRequest
from shared.bodies import JsonRoute
from shared.responses import JSONBytes

router = APIRouter(prefix="/api/v1", tags=["execution"], route_class=JsonRoute)


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
    responses={
        422: {"description": "Invalid body, or an Idempotency-Key reused with another body"},
        409: {"description": "The same Idempotency-Key is still in flight"},
        503: {"description": "Risk unreachable: no trade; see Retry-After"},
    },
)
async def trade(
    body: TradeRequest, trades: TradesDep, idempotency_key: IdempotencyKey = None
) -> JSONBytes:
    """Ask Risk, fill on the paper broker, record the order (FILLED or REJECTED)."""
    answer = await trades.trade(body, idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    # The order is rendered once by the service: the same bytes are stored for replays.
    return JSONBytes(answer.body, status_code=answer.status_code, headers=headers)


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
