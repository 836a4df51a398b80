"""The portfolio valued at market prices, saying which prices are stale or missing.

Prices come through `MarketDataClient`: the gateway first, the market source directly
when the gateway is down. A position without a price is carried at cost in `equity`
and the portfolio says it is incomplete, rather than inventing a value or failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from execution.ledger import Holdings, Position
from execution.schemas import ClosedPosition, Portfolio, PositionView, PriceStatus
from shared.market.client import MarketDataClient
from shared.market.models import Quote, utc_iso

log = logging.getLogger(__name__)


class PortfolioValuer:
    def __init__(
        self,
        market: MarketDataClient,
        *,
        stale_after: timedelta,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.market = market
        self.stale_after = stale_after
        self._now = now

    async def value(self, holdings: Holdings, *, account: int = 1) -> Portfolio:
        """Cash, each open position at its market price, P&L and equity."""
        held = sorted(
            (p for p in holdings.positions.values() if p.quantity > 0), key=lambda p: p.symbol
        )
        quotes = await asyncio.gather(*(self._quote(p.symbol) for p in held))
        now = self._now()
        views = [self._view(p, q, now) for p, q in zip(held, quotes, strict=True)]
        warnings = [
            f"{v.symbol}: price {v.price_status}"
            + (" (valued at cost)" if v.market_value is None else f" (as of {v.price_time})")
            for v in views
            if v.price_status != "live"
        ]
        positions_value = sum(
            (Decimal(str(v.market_value if v.market_value is not None else v.cost_basis)))
            for v in views
        )
        unrealized = sum(Decimal(str(v.unrealized_pnl or 0)) for v in views)
        closed = [
            ClosedPosition(symbol=p.symbol, realized_pnl=float(p.realized_pnl))
            for p in sorted(holdings.positions.values(), key=lambda p: p.symbol)
            if p.quantity == 0
        ]
        return Portfolio(
            account=account,
            cash=float(holdings.cash),
            positions=views,
            closed=closed,
            positions_value=float(positions_value),
            realized_pnl=float(holdings.realized_pnl),
            unrealized_pnl=float(unrealized),
            equity=float(holdings.cash + positions_value),
            starting_cash=float(holdings.starting_cash),
            complete=not warnings,
            warnings=warnings,
            valued_at=utc_iso(now),
        )

    async def _quote(self, symbol: str) -> Quote | None:
        try:
            return await self.market.price(symbol)
        except Exception as exc:  # one missing price must not hide the whole portfolio
            log.warning("no price for %s: %s", symbol, exc)
            return None

    def _view(self, position: Position, quote: Quote | None, now: datetime) -> PositionView:
        qty, cost = position.quantity, position.cost_basis
        status: PriceStatus = "missing"
        value = pnl = None
        if quote is not None:
            status = "stale" if now - quote.time > self.stale_after else "live"
            market_value = (qty * Decimal(str(quote.price))).quantize(Decimal("0.00000001"))
            value, pnl = float(market_value), float(market_value - cost)
        return PositionView(
            symbol=position.symbol,
            quantity=float(qty),
            average_cost=float(cost / qty),
            cost_basis=float(cost),
            price=None if quote is None else quote.price,
            price_status=status,
            price_source=None if quote is None else quote.source,
            price_time=None if quote is None else utc_iso(quote.time),
            market_value=value,
            unrealized_pnl=pnl,
            realized_pnl=float(position.realized_pnl),
        )
