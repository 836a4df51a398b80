"""What Regime Detection's routes use: the lifespan's typed state and its dependencies."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from regime_detection.service import RegimeService
from shared.app import AppState, lifespan_state


class State(AppState):
    """What the lifespan yields (see `app.py`)."""

    regimes: RegimeService


def state(request: Request) -> State:
    """The lifespan's state as this request sees it."""
    return cast(State, lifespan_state(request))


# async: FastAPI runs a plain `def` dependency in the thread pool, on every request.
async def get_regimes(request: Request) -> RegimeService:
    return state(request)["regimes"]


RegimesDep = Annotated[RegimeService, Depends(get_regimes)]
