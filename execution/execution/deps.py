"""What Execution's routes use: the lifespan's typed state and one dependency per part."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from execution.account import Accounts
from execution.events import EventBus
from execution.history import History
from execution.ledger import Ledger
from execution.orders import OrderBook
from execution.portfolio import PortfolioValuer
from execution.ratelimit import OrderRateLimiter
from execution.service import TradeService
from execution.trading_state import TradingStateStore
from execution.watch import HealthWatch
from shared.app import AppState, lifespan_state
from shared.auth import Caller, KeyCheck, Role
from shared.client import ServiceClient


class State(AppState):
    """What the lifespan yields (see `app.py`)."""

    trades: TradeService
    ledger: Ledger
    orders: OrderBook
    valuer: PortfolioValuer
    accounts: Accounts
    history: History
    events: EventBus
    trading: TradingStateStore
    watch: HealthWatch
    order_rate: OrderRateLimiter
    regime_client: ServiceClient


def state(request: Request) -> State:
    """The lifespan's state as this request sees it."""
    return cast(State, lifespan_state(request))


# async: FastAPI runs a plain `def` dependency in the thread pool, on every request.
async def get_trades(request: Request) -> TradeService:
    return state(request)["trades"]


async def get_ledger(request: Request) -> Ledger:
    return state(request)["ledger"]


async def get_orders(request: Request) -> OrderBook:
    return state(request)["orders"]


async def get_valuer(request: Request) -> PortfolioValuer:
    return state(request)["valuer"]


async def get_accounts(request: Request) -> Accounts:
    return state(request)["accounts"]


async def get_history(request: Request) -> History:
    return state(request)["history"]


async def get_events(request: Request) -> EventBus:
    return state(request)["events"]


async def get_trading(request: Request) -> TradingStateStore:
    return state(request)["trading"]


async def get_watch(request: Request) -> HealthWatch:
    return state(request)["watch"]


async def get_regime_client(request: Request) -> ServiceClient:
    return state(request)["regime_client"]


class OrderAdmission(KeyCheck):
    """The trader key check, then the order rate: over MAX_ORDERS_PER_MINUTE is a 429
    before anything is written.

    The caller is its API key (checked first, so requests without a valid key never use
    up anyone's budget): behind a load balancer every request has the same address. One
    dependency, not the key check plus a second one taking it: each dependency is a pass
    of FastAPI's solver (about 2% of a trade's instructions for the two saved).
    """

    def __init__(self) -> None:
        super().__init__(Role.TRADER)

    async def __call__(self, request: Request) -> Caller:
        caller = await super().__call__(request)
        state(request)["order_rate"].admit(caller.key_id)
        return caller


TradesDep = Annotated[TradeService, Depends(get_trades)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
OrdersDep = Annotated[OrderBook, Depends(get_orders)]
ValuerDep = Annotated[PortfolioValuer, Depends(get_valuer)]
AccountsDep = Annotated[Accounts, Depends(get_accounts)]
HistoryDep = Annotated[History, Depends(get_history)]
EventsDep = Annotated[EventBus, Depends(get_events)]
TradingDep = Annotated[TradingStateStore, Depends(get_trading)]
WatchDep = Annotated[HealthWatch, Depends(get_watch)]
RegimeClientDep = Annotated[ServiceClient, Depends(get_regime_client)]
# A trader key within its order rate (`POST /trade`).
AdmittedTraderDep = Annotated[Caller, Depends(OrderAdmission())]
