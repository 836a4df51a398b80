"""Parametric one-day Value at Risk: the model, stated once.

- Each position's one-day return is normal with zero mean and daily volatility `sigma`,
  so its VaR at confidence c is `z(c) * sigma * value` (`z(0.95)` = 1.6449).
- Positions are assumed perfectly correlated: the portfolio VaR is the sum of the
  per-position VaRs. That is the largest VaR any correlation could give, so it is
  conservative and needs no correlation estimate (crypto assets move together in a sell-off).
- Cash carries no risk. Positions are long only (spot), so every value is >= 0.
- Volatility is the standard deviation of close-to-close log returns per candle, scaled
  to one day by the square root of time: `sigma_day = sigma_candle * sqrt(86400 / g)`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

SECONDS_PER_DAY = 86_400


@functools.cache  # one confidence per service: no need to invert the CDF per trade
def z_score(confidence: float) -> float:
    """The one-sided standard normal quantile of `confidence` (1.6449 at 0.95)."""
    return NormalDist().inv_cdf(confidence)


def daily_volatility(per_candle: float, granularity: int) -> float:
    """Scale a per-candle volatility to one day by the square root of time."""
    return per_candle * math.sqrt(SECONDS_PER_DAY / granularity)


def candle_volatility(closes: Sequence[float]) -> float | None:
    """Sample standard deviation of close-to-close log returns; None with under 2 returns.

    Gaps the exchange leaves (no trades in an interval) are not filled: the return across
    a gap simply spans more time, which can only overstate the volatility.
    """
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]
    if len(returns) < 2:
        return None
    mean = math.fsum(returns) / len(returns)
    variance = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(variance)


def position_var(value: float, sigma_daily: float, z: float) -> float:
    """One-day VaR in USD of holding `value` USD of an asset with daily volatility `sigma`."""
    return z * sigma_daily * abs(value)


def portfolio_var(values: Mapping[str, float], sigmas: Mapping[str, float], z: float) -> float:
    """One-day VaR in USD of the positions, perfectly correlated: the sum of their VaRs."""
    return math.fsum(position_var(v, sigmas[s], z) for s, v in values.items())


def max_buy_under_var(
    *,
    limit_usd: float,
    var_of_others: float,
    held_value: float,
    sigma_daily: float,
    z: float,
) -> float:
    """The largest buy `x` (USD) with `z*sigma*(held + x) + var_of_others <= limit_usd`.

    Linear in `x`, so the bound is closed form; 0 when the portfolio is already over the
    limit, `inf` when the asset has no volatility (buying it adds no VaR).
    """
    per_dollar = z * sigma_daily
    room = limit_usd - var_of_others - per_dollar * held_value
    if room < 0:
        return 0.0  # already over the limit: no buy at all, whatever it adds
    return room / per_dollar if per_dollar > 0 else math.inf
