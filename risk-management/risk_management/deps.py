"""What Risk Management's routes use: the lifespan's typed state and its dependencies."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from risk_management.service import RiskService
from shared.app import AppState, lifespan_state


class State(AppState):
    """What the lifespan yields (see `app.py`)."""

    risk_service: RiskService


def state(request: Request) -> State:
    """The lifespan's state as this request sees it."""
    return cast(State, lifespan_state(request))


# async: FastAPI runs a plain `def` dependency in the thread pool, on every request.
async def get_risk_service(request: Request) -> RiskService:
    return state(request)["risk_service"]


RiskServiceDep = Annotated[RiskService, Depends(get_risk_service)]
