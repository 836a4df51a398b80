"""One approval: read price, regime and volatilities concurrently, then size the trade.

Upstream trouble never fails the call: no price for the traded symbol (or for a held
one, without which equity is unknown) refuses the trade; no regime sizes it as UNKNOWN;
no volatility takes the conservative default. Each fallback is said in `reason`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import Any

from risk_management.config import Settings
from risk_management.inputs import (
    PriceReading,
    RegimeReading,
    VolatilitySource,
    read_prices,
    read_regime,
    read_volatilities,
)
from risk_management.limits import Holding, Portfolio, TradeRequest
from risk_management.responses import priced_response, refused_response
from risk_management.schemas import ApproveTradeRequest, ApproveTradeResponse
from risk_management.sizing import Constraint, no_price, size_trade
from shared.client import ServiceClient
from shared.market.client import MarketDataClient
from shared.market.models import Regime


class RiskService:
    """Pre-trade approval against the configured limits."""

    def __init__(self, settings: Settings, market: MarketDataClient, regime: ServiceClient):
        self.settings = settings
        self.limits = settings.limits()
        self.market = market
        self.regime = regime
        # Decisions by (approved, binding_constraint), for /metrics.
        self.decisions: Counter[tuple[str, str]] = Counter()

    async def approve(self, request: ApproveTradeRequest) -> ApproveTradeResponse:
        """Approve, reduce or refuse one trade."""
        decision = await self._decide(request)
        approved = "true" if decision.approved else "false"
        self.decisions[approved, decision.binding_constraint] += 1
        return decision

    async def _decide(self, request: ApproveTradeRequest) -> ApproveTradeResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.decision_timeout_seconds
        symbol = request.symbol
        positions = request.current_portfolio.positions
        others = sorted(s for s, q in positions.items() if q > 0 and s != symbol)
        timed_out = PriceReading(None, "timed out")
        # One wait with the decision's deadline for every reading, and one batch read each
        # for the prices and the held symbols' candles: the upstream calls do not grow
        # with the number of held symbols.
        # (No task for the held symbols' candles when there are none.)
        prices, regime, *held = await _all_within(
            deadline,
            (read_prices(self.market, [symbol, *others]), {}),
            (self._read_regime(symbol), _regime_timeout()),
            *([(self._read_volatilities(others), {})] if others else []),
        )
        held_sigmas: dict[str, float | None] = held[0] if held else {}
        price = prices.get(symbol, timed_out)
        other_prices = [prices.get(s, timed_out) for s in others]
        other_sigmas = [held_sigmas.get(s) for s in others]
        notes = [] if regime.problem is None else [_regime_note(regime.problem)]
        if price.quote is None:
            reason = no_price(symbol, price.problem or "no answer")
            return refused_response(Constraint.NO_PRICE.value, "; ".join([reason, *notes]), regime)
        unpriced = [s for s, p in zip(others, other_prices, strict=True) if p.quote is None]
        if unpriced:
            reason = f"No price for held {', '.join(unpriced)}: the portfolio cannot be valued"
            return refused_response(
                Constraint.UNPRICED_HOLDING.value, "; ".join([reason, *notes]), regime
            )

        sigma = regime.sigma_daily
        sigma_source: VolatilitySource = "regime"
        if sigma is None:
            (sigmas,) = await _all_within(deadline, (self._read_volatilities([symbol]), {}))
            sigma = sigmas.get(symbol)
            sigma_source = "candles"
        sigma, sigma_source = self._or_default(symbol, sigma, sigma_source, notes)
        holdings = {symbol: Holding(positions.get(symbol, 0.0), price.quote.price, sigma)}
        for s, reading, other_sigma in zip(others, other_prices, other_sigmas, strict=True):
            assert reading.quote is not None
            held_sigma, _ = self._or_default(s, other_sigma, "candles", notes)
            holdings[s] = Holding(positions[s], reading.quote.price, held_sigma)

        portfolio = Portfolio(cash=request.current_portfolio.cash, holdings=holdings)
        trade = TradeRequest(symbol=symbol, side=request.side, amount=request.amount)
        decision = size_trade(trade, portfolio, regime.regime, self.limits)
        return priced_response(
            decision, regime, price.quote, sigma, sigma_source, notes, self.limits, portfolio
        )

    async def _read_regime(self, symbol: str) -> RegimeReading:
        return await read_regime(self.regime, symbol, self.settings.volatility_granularity)

    async def _read_volatilities(self, symbols: list[str]) -> dict[str, float | None]:
        if not symbols:
            return {}
        granularity = self.settings.volatility_granularity
        return await read_volatilities(
            self.market, symbols, granularity, self.settings.volatility_periods
        )

    def _or_default(
        self, symbol: str, sigma: float | None, source: VolatilitySource, notes: list[str]
    ) -> tuple[float, VolatilitySource]:
        """The volatility floored, or the conservative default (noted) when unknown."""
        if sigma is None:
            default = self.settings.default_daily_volatility
            notes.append(f"no volatility for {symbol}: assumed {default:.1%} daily")
            return default, "default"
        return max(sigma, self.settings.min_daily_volatility), source


async def _all_within(deadline: float, *calls: tuple[Awaitable[Any], Any]) -> list[Any]:
    """Each call's result, or its fallback if it is not done by the decision's deadline."""
    tasks = [asyncio.ensure_future(call) for call, _ in calls]
    try:
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait(tasks, timeout=timeout)
    finally:
        for task in tasks:
            task.cancel()  # those still reading; a no-op for the finished ones
    return [
        task.result() if task in done else fallback
        for task, (_, fallback) in zip(tasks, calls, strict=True)
    ]


def _regime_timeout() -> RegimeReading:
    return RegimeReading(Regime.UNKNOWN, None, None, problem="timed out")


def _regime_note(problem: str) -> str:
    return f"regime service unavailable ({problem}); sized as UNKNOWN"
