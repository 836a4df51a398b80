"""Reading what a decision needs: price, regime and volatility, each failing soft.

Every reader returns a value or an explanation, never raises: the service decides
what a missing input means (no price: refuse; no regime: UNKNOWN; no volatility:
the conservative default).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ValidationError

from risk_management.limits import Regime
from shared.client import ServiceClient
from shared.errors import DomainError
from shared.market.client import MarketDataClient
from shared.market.models import Quote
from shared.market.source import UnknownSymbolError
from shared.var import candle_volatility, daily_volatility

log = logging.getLogger(__name__)

VolatilitySource = Literal["regime", "candles", "default"]


@dataclass(frozen=True, slots=True)
class PriceReading:
    quote: Quote | None
    problem: str | None = None
    unknown_symbol: bool = False


@dataclass(frozen=True, slots=True)
class RegimeReading:
    regime: Regime
    confidence: float | None
    sigma_daily: float | None  # from the regime's indicators, scaled to one day
    problem: str | None = None  # why the regime service could not be used


class _RegimeAnswer(BaseModel):
    """The part of the regime service's answer that sizing reads."""

    regime: str
    confidence: float | None = None
    granularity: int | None = None
    indicators: dict[str, float | None] | None = None


async def read_price(market: MarketDataClient, symbol: str) -> PriceReading:
    """The latest price, through the gateway or the direct source."""
    try:
        quote = await market.price(symbol)
    except UnknownSymbolError as exc:
        return PriceReading(None, exc.detail, unknown_symbol=True)
    except DomainError as exc:
        return PriceReading(None, exc.detail)
    except Exception as exc:  # a malformed answer must refuse the trade, not fail the call
        log.exception("reading the price of %s failed", symbol)
        return PriceReading(None, type(exc).__name__)
    if not math.isfinite(quote.price) or quote.price <= 0:
        return PriceReading(None, f"unusable price {quote.price!r}")
    return PriceReading(quote)


async def read_regime(client: ServiceClient, symbol: str, granularity: int) -> RegimeReading:
    """The regime service's verdict; UNKNOWN with a reason when it cannot give one."""
    try:
        body = await client.get_json(
            f"/api/v1/regime/{symbol}", params={"granularity": granularity}
        )
        answer = _RegimeAnswer.model_validate(body)
    except DomainError as exc:
        log.warning("regime service unavailable for %s: %s", symbol, exc.detail)
        return RegimeReading(Regime.UNKNOWN, None, None, problem=exc.detail)
    except (ValidationError, ValueError) as exc:
        log.warning("regime service sent an unreadable answer for %s: %s", symbol, exc)
        return RegimeReading(Regime.UNKNOWN, None, None, problem="unreadable answer")
    per_candle = (answer.indicators or {}).get("volatility")
    sigma = None
    if per_candle is not None and math.isfinite(per_candle) and per_candle >= 0:
        sigma = daily_volatility(per_candle, answer.granularity or granularity)
    return RegimeReading(Regime.parse(answer.regime), answer.confidence, sigma)


async def read_volatility(
    market: MarketDataClient, symbol: str, granularity: int, periods: int
) -> float | None:
    """Daily volatility from the last `periods` candles; None when they cannot be had."""
    try:
        series = await market.candles(symbol, granularity, periods)
    except DomainError as exc:
        log.warning("no candles for %s: %s", symbol, exc.detail)
        return None
    except Exception:
        log.exception("reading candles of %s failed", symbol)
        return None
    per_candle = candle_volatility([c.close for c in series.candles])
    return None if per_candle is None else daily_volatility(per_candle, granularity)
