"""What the sizing rules read: the limits, the regime, and the priced portfolio."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from shared.market.models import Regime

Side = Literal["buy", "sell"]


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Every sizing limit; `Settings.limits()` builds it (the defaults live there)."""

    max_position_share: float
    regime_multipliers: Mapping[Regime, float]
    var_limit_share: float
    var_confidence: float
    buy_fee_rate: float
    min_order_usd: float
    max_order_usd: float

    def multiplier(self, regime: Regime) -> float:
        return self.regime_multipliers[regime]


@dataclass(frozen=True, slots=True)
class Holding:
    """One symbol of the portfolio, priced, with its daily volatility."""

    quantity: float
    price: float
    sigma_daily: float

    @property
    def value(self) -> float:
        return self.quantity * self.price


@dataclass(frozen=True, kw_only=True)
class Portfolio:
    """Cash and priced holdings; the traded symbol is among the holdings (quantity 0 if new)."""

    cash: float
    holdings: Mapping[str, Holding]

    @property
    def equity(self) -> float:
        """Cash plus every holding at its quoted price."""
        return self.cash + math.fsum(h.value for h in self.holdings.values())

    def values(self) -> dict[str, float]:
        return {s: h.value for s, h in self.holdings.items()}

    def sigmas(self) -> dict[str, float]:
        return {s: h.sigma_daily for s, h in self.holdings.items()}


@dataclass(frozen=True, kw_only=True)
class TradeRequest:
    symbol: str
    side: Side
    amount: float
