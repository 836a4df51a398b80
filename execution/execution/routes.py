"""Execution's endpoints: trade, the order history and the valued portfolio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from execution.idempotency import scoped_key
from execution.ledger import Ledger
from execution.orders import OrderBook
from execution.portfolio import PortfolioValuer
from execution.schemas import Order, OrderList, Portfolio, TradeRequest
from execution.service import TradeService
from shared.auth import TraderDep, ViewerDep
from shared.bodies import json_body, read_body

router = APIRouter(prefix="/api/v1", tags=["execution"])


# `async def`: FastAPI would run a plain `def` dependency in the thread pool per request.
async def get_orders(request: Request) -> OrderBook:
    return request.app.state.orders  # type: ignore[no-any-return]


async def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger  # type: ignore[no-any-return]


async def get_valuer(request: Request) -> PortfolioValuer:
    return request.app.state.valuer  # type: ignore[no-any-return]


OrdersDep = Annotated[OrderBook, Depends(get_orders)]
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
        409: {"description": "The same Idempotency-Key is still in flight"},
        503: {"description": "Risk unreachable: no trade; see Retry-After"},
    },
)
async def trade(
    request: Request, caller: TraderDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Ask Risk, fill on the paper broker, record the order (FILLED or REJECTED)."""
    # The hot path: the body read by `read_body`, the service straight from the app's
    # state rather than through `Depends` (see `shared.bodies`).
    body = await read_body(request, TradeRequest)
    trades: TradeService = request.app.state.trades
    key = None if idempotency_key is None else scoped_key(caller, idempotency_key)
    answer = await trades.trade(body, key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(
        answer.body, status_code=answer.status_code, media_type="application/json", headers=headers
    )


@router.get("/orders", responses={422: {"description": "Invalid limit or cursor"}})
async def list_orders(
    orders: OrdersDep,
    caller: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OrderList:
    """Orders newest first; follow `next_cursor` for older ones."""
    records, next_cursor = await orders.page(limit=limit, cursor=cursor)
    return OrderList(orders=[Order.of(r) for r in records], next_cursor=next_cursor)


@router.get("/orders/{order_id}", responses={404: {"description": "No such order"}})
async def get_order(order_id: str, orders: OrdersDep, caller: ViewerDep) -> Order:
    """One order by its id."""
    return Order.of(await orders.get(order_id))


@router.get("/portfolio")
async def portfolio(ledger: LedgerDep, valuer: ValuerDep, caller: ViewerDep) -> Portfolio:
    """Cash, positions at market prices, realised and unrealised P&L, equity."""
    return await valuer.value(await ledger.holdings())
