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

from shared.client import ServiceClient
from shared.errors import DomainError
from shared.market.client import MarketDataClient
from shared.market.models import CandleSeries, Quote, Regime
from shared.var import candle_volatility, daily_volatility

log = logging.getLogger(__name__)

VolatilitySource = Literal["regime", "candles", "default"]


@dataclass(frozen=True, slots=True)
class PriceReading:
    quote: Quote | None
    problem: str | None = None


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


async def read_prices(market: MarketDataClient, symbols: list[str]) -> dict[str, PriceReading]:
    """The latest price of every symbol in one read (the gateway's batch), each a reading."""
    try:
        found = await market.prices(symbols)
    except DomainError as exc:
        return {s: PriceReading(None, exc.detail) for s in symbols}
    except Exception as exc:  # a malformed answer must refuse the trade, not fail the call
        log.exception("reading the prices of %s failed", ", ".join(symbols))
        return {s: PriceReading(None, type(exc).__name__) for s in symbols}
    return {s: _reading(found.get(s)) for s in symbols}


def _reading(quote: Quote | DomainError | None) -> PriceReading:
    if quote is None:
        return PriceReading(None, "no answer")
    if isinstance(quote, DomainError):
        return PriceReading(None, quote.detail)
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
    return RegimeReading(_regime_named(answer.regime), answer.confidence, sigma)


def _regime_named(label: str) -> Regime:
    """The regime a label names, in any case; anything unrecognised is UNKNOWN (most
    conservative), so an odd answer never sizes as a known regime."""
    try:
        return Regime(label.upper())
    except ValueError:
        return Regime.UNKNOWN


async def read_volatilities(
    market: MarketDataClient, symbols: list[str], granularity: int, periods: int
) -> dict[str, float | None]:
    """Daily volatility of each symbol from its last `periods` candles, in one read (the
    gateway's batch); None for a symbol whose candles cannot be had."""
    try:
        found = await market.candles_many(symbols, granularity, periods)
    except DomainError as exc:
        log.warning("no candles for %s: %s", ", ".join(symbols), exc.detail)
        return dict.fromkeys(symbols)
    except Exception:
        log.exception("reading candles of %s failed", ", ".join(symbols))
        return dict.fromkeys(symbols)
    sigmas: dict[str, float | None] = {}
    for symbol in symbols:
        series = found.get(symbol)
        if not isinstance(series, CandleSeries):
            log.warning("no candles for %s: %s", symbol, getattr(series, "detail", "no answer"))
            sigmas[symbol] = None
            continue
        per_candle = candle_volatility([c.close for c in series.candles])
        sigmas[symbol] = None if per_candle is None else daily_volatility(per_candle, granularity)
    return sigmas
