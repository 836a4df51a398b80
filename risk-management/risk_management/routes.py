"""HTTP surface of Risk Management: one decision endpoint."""

from __future__ import annotations

from fastapi import APIRouter

from risk_management.deps import RiskServiceDep
from risk_management.schemas import ApproveTradeRequest, ApproveTradeResponse
from shared.auth import ServiceDep
from shared.bodies import JsonRoute

router = APIRouter(prefix="/api/v1", tags=["risk"], route_class=JsonRoute)


@router.post("/approve-trade", summary="Approve, reduce or refuse a trade")
async def approve_trade(
    body: ApproveTradeRequest, risk_service: RiskServiceDep, caller: ServiceDep
) -> ApproveTradeResponse:
    """Size a trade against regime, position, cash/holdings, VaR and minimum-order limits.

    The portfolio is the caller's claim, so only the service key (Execution) or an
    admin may ask.
    """
    return await risk_service.approve(body)
