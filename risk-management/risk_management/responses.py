"""Turning a sizing decision (or a refusal before sizing) into the API's answer."""

from __future__ import annotations

from collections.abc import Sequence

from risk_management.inputs import RegimeReading, VolatilitySource
from risk_management.limits import Limits, Portfolio
from risk_management.schemas import AppliedLimits, ApproveTradeResponse, RiskMetrics, Valued
from risk_management.sizing import Decision
from shared.market.models import Quote


def _with_notes(reason: str, notes: Sequence[str]) -> str:
    return "; ".join([reason, *notes])


def priced_response(
    decision: Decision,
    regime: RegimeReading,
    quote: Quote,
    sigma_daily: float,
    sigma_source: VolatilitySource,
    notes: Sequence[str],
    limits: Limits,
    portfolio: Portfolio,
) -> ApproveTradeResponse:
    """The answer for a trade that could be priced and sized."""
    multiplier = limits.multiplier(regime.regime)
    return ApproveTradeResponse(
        approved=decision.approved,
        max_amount=decision.max_amount,
        reason=_with_notes(decision.reason, notes),
        binding_constraint=decision.constraint.value,
        risk_metrics=RiskMetrics(
            portfolio_var=decision.var_share,
            portfolio_var_usd=decision.var_usd,
            concentration_risk=decision.concentration,
            volatility_daily=sigma_daily,
            volatility_source=sigma_source,
        ),
        regime=regime.regime.value,
        regime_confidence=regime.confidence,
        price=quote.price,
        price_source=quote.source,
        equity=decision.equity,
        limits=AppliedLimits(
            max_position_share=limits.max_position_share * multiplier,
            regime_multiplier=multiplier,
            var_limit_share=limits.var_limit_share,
            var_confidence=limits.var_confidence,
            min_order_usd=limits.min_order_usd,
            max_order_usd=limits.max_order_usd,
            buy_fee_rate=limits.buy_fee_rate,
        ),
        valuation={
            s: Valued(price=h.price, volatility_daily=h.sigma_daily)
            for s, h in portfolio.holdings.items()
        },
    )


def refused_response(constraint: str, reason: str, regime: RegimeReading) -> ApproveTradeResponse:
    """The answer for a trade refused before sizing: it could not be priced."""
    return ApproveTradeResponse(
        approved=False,
        max_amount=0.0,
        reason=reason,
        binding_constraint=constraint,
        risk_metrics=None,
        regime=regime.regime.value,
        regime_confidence=regime.confidence,
        price=None,
        price_source=None,
        equity=None,
    )
