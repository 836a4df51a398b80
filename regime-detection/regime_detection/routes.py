"""`GET /api/v1/regime/{symbol}`: thin handler over `RegimeService`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from regime_detection.config import MIN_WINDOW
from regime_detection.deps import RegimesDep
from regime_detection.schemas import AppliedThresholds, IndicatorValues, RegimeResponse
from regime_detection.service import Assessment, RegimeService
from shared.auth import ReaderDep
from shared.bodies import JsonRoute
from shared.market.models import (
    MAX_CANDLES,
    Granularity,
    GranularityQuery,
    SymbolPath,
    utc_iso,
)
from shared.responses import JSONBytes

router = APIRouter(prefix="/api/v1", tags=["regime"], route_class=JsonRoute)


PeriodsQuery = Annotated[
    int | None,
    Query(
        ge=MIN_WINDOW,
        le=MAX_CANDLES,
        description="Candles in the indicator window; DEFAULT_PERIODS when omitted (the "
        "service's description states it)",
    ),
]


@router.get(
    "/regime/{symbol}",
    summary="Market regime of a symbol",
    response_model=RegimeResponse,
    responses={503: {"description": "No market data from the gateway nor the source"}},
)
async def regime(
    symbol: SymbolPath,
    regimes: RegimesDep,
    caller: ReaderDep,
    granularity: GranularityQuery = Granularity.ONE_MINUTE,
    periods: PeriodsQuery = None,
) -> JSONBytes:
    """TRENDING, CHOPPY, VOLATILE or UNKNOWN, from short-horizon volatility and efficiency."""
    answer = await regimes.assess(symbol, int(granularity), periods)
    # The JSON FastAPI would make from `RegimeResponse`, built once per cached answer.
    body = regimes.rendered(answer, lambda a: to_json(a, regimes))
    return JSONBytes(body)


def to_json(answer: Assessment, service: RegimeService) -> bytes:
    """The API body of an assessment, as FastAPI would serialise it."""
    return to_response(answer, service).model_dump_json().encode()


def _finite(value: float | None) -> float | None:
    return None if value is None or value != value else value


def to_response(answer: Assessment, service: RegimeService) -> RegimeResponse:
    """The API view of an assessment."""
    reading, th = answer.reading, service.thresholds
    ind = reading.indicators
    return RegimeResponse(
        symbol=answer.symbol,
        regime=reading.regime,
        confidence=round(reading.confidence, 4),
        indicators=IndicatorValues(
            adx=_finite(ind.adx) if ind else None,
            choppiness=_finite(ind.choppiness) if ind else None,
            volatility=_finite(ind.volatility) if ind else None,
            volatility_annualized=_finite(ind.volatility_annualized) if ind else None,
            fast_volatility_annualized=_finite(ind.fast_volatility_annualized) if ind else None,
            true_range_ratio=_finite(ind.true_range_ratio) if ind else None,
            efficiency_ratio=_finite(ind.efficiency_ratio) if ind else None,
        ),
        timestamp=utc_iso(answer.computed_at),
        as_of=utc_iso(answer.as_of) if answer.as_of is not None else None,
        granularity=answer.granularity,
        periods=answer.periods,
        candles=answer.candles,
        baseline_candles=answer.baseline_candles,
        thresholds=AppliedThresholds(
            true_range_ratio=th.true_range_ratio,
            volatility_ceiling_annualized=th.volatility_ceiling_annualized,
            efficiency_ratio=th.efficiency,
            confirm_candles=th.confirm,
        ),
        source=answer.source,
        via=answer.via,
        reason=reading.reason,
    )
