"""What the gateway's routes use: the lifespan's typed state and one dependency per part."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from market_data_gateway.service import GatewayService
from shared.app import AppState, lifespan_state


class State(AppState):
    """What the lifespan yields (see `app.py`)."""

    market: GatewayService


def state(request: Request) -> State:
    """The lifespan's state as this request sees it."""
    return cast(State, lifespan_state(request))


# async: FastAPI runs a plain `def` dependency in the thread pool, on every request.
async def get_market(request: Request) -> GatewayService:
    return state(request)["market"]


MarketDep = Annotated[GatewayService, Depends(get_market)]
