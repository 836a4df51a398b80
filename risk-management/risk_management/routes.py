"""HTTP surface of Risk Management: one decision endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from risk_management.schemas import ApproveTradeRequest, ApproveTradeResponse
from risk_management.service import RiskService
from shared.auth import ServiceDep
from shared.bodies import json_body, read_body

router = APIRouter(prefix="/api/v1", tags=["risk"])


@router.post(
    "/approve-trade",
    summary="Approve, reduce or refuse a trade",
    response_model=ApproveTradeResponse,
    openapi_extra=json_body(ApproveTradeRequest),
)
async def approve_trade(request: Request, caller: ServiceDep) -> Response:
    """Size a trade against regime, position, cash/holdings, VaR and minimum-order limits.

    The portfolio is the caller's claim, so only the service key (Execution) or an
    admin may ask.
    """
    # The hot path: the body read by `read_body`, the service straight from the app's
    # state rather than through `Depends` (see `shared.bodies`).
    body = await read_body(request, ApproveTradeRequest)
    service: RiskService = request.app.state.risk
    answer = await service.approve(body)
    # Serialised here: FastAPI would first revalidate the model the service just built.
    return Response(answer.model_dump_json().encode(), media_type="application/json")
