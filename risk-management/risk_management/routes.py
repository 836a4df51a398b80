"""HTTP surface of Risk Management: one decision endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from risk_management.schemas import ApproveTradeRequest, ApproveTradeResponse
from risk_management.service import RiskService

router = APIRouter(prefix="/api/v1", tags=["risk"])


async def get_service(request: Request) -> RiskService:
    # async: FastAPI runs a plain `def` dependency in a worker thread on every request.
    service: RiskService = request.app.state.risk
    return service


ServiceDep = Annotated[RiskService, Depends(get_service)]


@router.post(
    "/approve-trade",
    summary="Approve, reduce or refuse a trade",
    response_model=ApproveTradeResponse,
)
async def approve_trade(body: ApproveTradeRequest, service: ServiceDep) -> Response:
    """Size a trade against regime, position, cash/holdings, VaR and minimum-order limits."""
    answer = await service.approve(body)
    # Serialised here: FastAPI would first revalidate the model the service just built.
    return Response(answer.model_dump_json().encode(), media_type="application/json")
