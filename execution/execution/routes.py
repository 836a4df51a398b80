"""Execution's endpoints: trade, the order history and the valued portfolio."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from execution.account import Accounts
from execution.events import EventBus
from execution.history import History
from execution.ledger import Ledger
from execution.orders import OrderBook, OrderFilter
from execution.portfolio import PortfolioValuer
from execution.ratelimit import OrderRateLimiter
from execution.schemas import (
    Order,
    OrderList,
    Portfolio,
    PortfolioHistory,
    ResetAnswer,
    TradeRequest,
    TradingStateHistory,
    TradingStateIn,
    TradingStateOut,
)
from execution.service import TradeService
from execution.trading_state import TradingStateStore
from execution.watch import HealthWatch
from shared.bodies import json_body, read_body
from shared.errors import InvalidRequestError
from shared.market.models import Symbol

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


async def get_history(request: Request) -> History:
    return request.app.state.history  # type: ignore[no-any-return]


async def get_accounts(request: Request) -> Accounts:
    return request.app.state.accounts  # type: ignore[no-any-return]


async def get_events(request: Request) -> EventBus:
    return request.app.state.events  # type: ignore[no-any-return]


async def get_watch(request: Request) -> HealthWatch:
    return request.app.state.watch  # type: ignore[no-any-return]


OrdersDep = Annotated[OrderBook, Depends(get_orders)]
EventsDep = Annotated[EventBus, Depends(get_events)]
WatchDep = Annotated[HealthWatch, Depends(get_watch)]
HistoryDep = Annotated[History, Depends(get_history)]
AccountsDep = Annotated[Accounts, Depends(get_accounts)]
Since = Annotated[datetime | None, Query(description="ISO-8601, inclusive; no zone means UTC")]
Until = Annotated[datetime | None, Query(description="ISO-8601, exclusive; no zone means UTC")]
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
        429: {"description": "Over MAX_ORDERS_PER_MINUTE: nothing done; see Retry-After"},
        503: {"description": "Risk unreachable: no trade; see Retry-After"},
    },
)
async def trade(request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    """Ask Risk, fill on the paper broker, record the order (FILLED or REJECTED)."""
    # The hot path: the body read by `read_body`, the service straight from the app's
    # state rather than through `Depends` (see `shared.bodies`).
    # First: a caller over MAX_ORDERS_PER_MINUTE gets a 429 before anything is read or written.
    limiter: OrderRateLimiter = request.app.state.order_rate
    limiter.admit(request.client.host if request.client else "unknown")
    body = await read_body(request, TradeRequest)
    trades: TradeService = request.app.state.trades
    answer = await trades.trade(body, idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(
        answer.body, status_code=answer.status_code, media_type="application/json", headers=headers
    )


_ORDER_QUERY = frozenset({"limit", "cursor", "symbol", "side", "status", "since", "until"})
CSV_COLUMNS = (
    "order_id",
    "created_at",
    "account",
    "symbol",
    "side",
    "status",
    "requested_amount",
    "filled_amount",
    "quantity",
    "price",
    "fee",
    "reason",
    "trace_id",
)


@router.get(
    "/orders",
    response_model=OrderList,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or with `Accept: text/csv` every matching order as CSV",
        },
        422: {"description": "Invalid limit, cursor or filter value, or an unknown parameter"},
    },
)
async def list_orders(
    request: Request,
    orders: OrdersDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    symbol: Annotated[Symbol | None, Query(description="Only this product")] = None,
    side: Literal["buy", "sell"] | None = None,
    status: Literal["FILLED", "REJECTED"] | None = None,
    since: Since = None,
    until: Until = None,
) -> OrderList | StreamingResponse:
    """Orders newest first, filtered; follow `next_cursor` for older ones.

    With `Accept: text/csv`: every matching order (all pages, `limit` and `cursor`
    ignored), a header row then one order a row, streamed."""
    unknown = sorted(set(request.query_params) - _ORDER_QUERY)
    if unknown:
        raise InvalidRequestError(f"Unknown query parameter: {', '.join(unknown)}")
    where = OrderFilter(
        symbol=symbol, side=side, status=status, since=_utc(since), until=_utc(until)
    )
    if "text/csv" in request.headers.get("accept", ""):
        return StreamingResponse(
            _csv(orders, where),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="orders.csv"'},
        )
    page, next_cursor = await orders.page(limit=limit, cursor=cursor, where=where)
    return OrderList(orders=[Order.of(o) for o in page], next_cursor=next_cursor)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


async def _csv(orders: OrderBook, where: OrderFilter) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for page in orders.export(where):
        for listed in page:
            row = Order.of(listed).model_dump()
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@router.get("/orders/{order_id}", responses={404: {"description": "No such order"}})
async def get_order(order_id: str, orders: OrdersDep) -> Order:
    """One order by its id."""
    return Order.of(await orders.get(order_id))


@router.get("/portfolio")
async def portfolio(ledger: LedgerDep, valuer: ValuerDep, accounts: AccountsDep) -> Portfolio:
    """Cash, positions at market prices, realised and unrealised P&L, equity; positions
    sold down to zero stay listed under `closed` with what they realised."""
    account = await accounts.current()
    return await valuer.value(await ledger.holdings(), account=account)


@router.get("/portfolio/history", responses={422: {"description": "Invalid since or until"}})
async def portfolio_history(
    history: HistoryDep, since: Since = None, until: Until = None
) -> PortfolioHistory:
    """The open account's equity, cash, positions value and realised P&L over time: a
    point after fills, on the `PORTFOLIO_HISTORY_SECONDS` timer, and at the reset."""
    return await history.points(since=_utc(since), until=_utc(until))


@router.post("/account/reset")
async def reset_account(accounts: AccountsDep) -> ResetAnswer:
    """Close the paper account and open a new one with `STARTING_CASH`. Nothing is
    deleted: earlier orders stay listed, labelled with their `account`, and the closed
    account's final books are kept in the ledger."""
    return await accounts.reset()


@router.get("/events", response_class=EventSourceResponse)
async def events(bus: EventsDep, watch: WatchDep) -> AsyncIterator[ServerSentEvent]:
    """Live events (`text/event-stream`): `order` (every order written, as the trade
    answered it), `portfolio` (each new history point), `trading_state` (each change) and
    `health` (the four services, at once and every `CONSOLE_HEALTH_SECONDS`)."""
    with bus.subscribe() as queue:
        watch.watchers += 1
        try:
            yield ServerSentEvent(event="health", data=await watch.current())
            while True:
                event = await queue.get()
                yield ServerSentEvent(event=event.kind, data=event.data)
        finally:
            watch.watchers -= 1


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
