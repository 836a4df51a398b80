"""Execution's endpoints: trade, the order history and the valued portfolio."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from execution.deps import (
    AccountsDep,
    AdmittedTraderDep,
    EventsDep,
    HistoryDep,
    LedgerDep,
    OrdersDep,
    TradesDep,
    TradingDep,
    ValuerDep,
    WatchDep,
)
from execution.idempotency import scoped_key
from execution.orders import OrderBook, OrderFilter
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
from shared.auth import AdminDep, ViewerDep
from shared.bodies import JsonRoute
from shared.errors import InvalidRequestError
from shared.market.models import Symbol
from shared.responses import JSONBytes

router = APIRouter(prefix="/api/v1", tags=["execution"], route_class=JsonRoute)


Since = Annotated[datetime | None, Query(description="ISO-8601, inclusive; no zone means UTC")]
Until = Annotated[datetime | None, Query(description="ISO-8601, exclusive; no zone means UTC")]
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
        409: {
            "description": "The trading state refuses the trade (recorded as REJECTED), "
            "or the same Idempotency-Key is still in flight"
        },
        429: {"description": "Over MAX_ORDERS_PER_MINUTE: nothing done; see Retry-After"},
        503: {"description": "Risk unreachable: no trade; see Retry-After"},
    },
)
async def trade(
    body: TradeRequest,
    trades: TradesDep,
    caller: AdmittedTraderDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONBytes:
    """Ask Risk, fill on the paper broker, record the order (FILLED or REJECTED)."""
    key = None if idempotency_key is None else scoped_key(caller, idempotency_key)
    answer = await trades.trade(body, key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    # The order is rendered once by the service: the same bytes are stored for replays.
    return JSONBytes(answer.body, status_code=answer.status_code, headers=headers)


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
    caller: ViewerDep,
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
async def get_order(order_id: str, orders: OrdersDep, caller: ViewerDep) -> Order:
    """One order by its id."""
    return Order.of(await orders.get(order_id))


@router.get("/portfolio")
async def portfolio(
    ledger: LedgerDep, valuer: ValuerDep, accounts: AccountsDep, caller: ViewerDep
) -> Portfolio:
    """Cash, positions at market prices, realised and unrealised P&L, equity; positions
    sold down to zero stay listed under `closed` with what they realised."""
    account = await accounts.current()
    return await valuer.value(await ledger.holdings(), account=account)


@router.get(
    "/portfolio/history",
    responses={422: {"description": "Invalid limit, cursor, since or until"}},
)
async def portfolio_history(
    history: HistoryDep,
    caller: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    since: Since = None,
    until: Until = None,
) -> PortfolioHistory:
    """The open account's equity, cash, positions value and realised P&L over time,
    newest first (follow `next_cursor` for older points): a point after fills, on the
    `PORTFOLIO_HISTORY_SECONDS` timer, and at the reset."""
    return await history.points(limit=limit, cursor=cursor, since=_utc(since), until=_utc(until))


@router.post("/account/reset")
async def reset_account(accounts: AccountsDep, caller: AdminDep) -> ResetAnswer:
    """Close the paper account and open a new one with `STARTING_CASH`. Nothing is
    deleted: earlier orders stay listed, labelled with their `account`, and the closed
    account's final books are kept in the ledger."""
    return await accounts.reset()


@router.get("/events", response_class=EventSourceResponse)
async def events(
    bus: EventsDep, watch: WatchDep, caller: ViewerDep
) -> AsyncIterator[ServerSentEvent]:
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
async def trading_state(trading: TradingDep, caller: ViewerDep) -> TradingStateOut:
    """The trading state in force (ACTIVE, REDUCING or HALTED), who set it, when and why."""
    return TradingStateOut.of(await trading.current())


@router.put("/trading-state", responses={422: {"description": "Unknown state or no reason"}})
async def set_trading_state(
    change: TradingStateIn, trading: TradingDep, caller: AdminDep
) -> TradingStateOut:
    """Halt, reduce or resume trading; the only way to resume after a protection tripped."""
    # The history names the admin key that did it by its role and id, never the key.
    operator = f"{caller.role}:{caller.key_id}"
    return TradingStateOut.of(await trading.change(change.state, change.reason, operator))


@router.get("/trading-state/history", responses={422: {"description": "Invalid limit"}})
async def trading_state_history(
    trading: TradingDep, caller: ViewerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> TradingStateHistory:
    """Every change of the trading state, newest first: who, when and why."""
    changes = await trading.history(limit)
    return TradingStateHistory(changes=[TradingStateOut.of(c) for c in changes])
