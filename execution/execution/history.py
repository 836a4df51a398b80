"""The portfolio's history: a point after fills and on a timer, kept in the ledger.

A point after a fill values the open positions at the last prices this process saw: the
fill's own price for the traded symbol, the timer's valuation for the others (cost
until one is known). Fills that land while a point is being written, or within
`PORTFOLIO_FILL_POINT_SECONDS` of the last fill's point, share the next one: a stream of
trades costs a point a second, not one each (a point is a ledger write of its own, once
a sixth of a trade's CPU when every fill had one). The timer's point is valued at
market prices through `PortfolioValuer`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import Connection, select

from execution.account import current_account
from execution.db import Database
from execution.dialects import dialect_of
from execution.events import Event, EventBus
from execution.ledger import Ledger, _holdings
from execution.models import accounts, portfolio_points
from execution.orders import decode_cursor, encode_cursor
from execution.portfolio import PortfolioValuer
from execution.schemas import HistoryPoint, PortfolioHistory
from shared.market.models import utc_iso

log = logging.getLogger(__name__)
Trigger = Literal["fill", "timer", "reset"]
_CENT = Decimal("0.00000001")


class History:
    def __init__(
        self,
        ledger: Ledger,
        valuer: PortfolioValuer,
        bus: EventBus,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ledger = ledger
        self.db: Database = ledger.db
        self.valuer = valuer
        self.bus = bus
        self.prices: dict[str, Decimal] = {}
        self._now = now
        self._sleep = sleep
        # The latest point's equity, for `execution_equity_usd`.
        self.equity: float | None = None

    async def points(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> PortfolioHistory:
        """Up to `limit` of the open account's points, newest first, after `cursor`;
        `since` inclusive, `until` exclusive."""
        after = None if cursor is None else decode_cursor(cursor)

        def read(conn: Connection) -> PortfolioHistory:
            account = current_account(conn)
            t = portfolio_points
            query = select(t).where(t.c.account == account)
            if since is not None:
                query = query.where(t.c.timestamp >= since)
            if until is not None:
                query = query.where(t.c.timestamp < until)
            if after is not None:
                query = query.where(t.c.seq < after)
            rows = conn.execute(query.order_by(t.c.seq.desc()).limit(limit + 1)).all()
            more, rows = len(rows) > limit, rows[:limit]
            return PortfolioHistory(
                account=account,
                next_cursor=encode_cursor(rows[-1].seq) if more else None,
                points=[
                    HistoryPoint(
                        timestamp=utc_iso(r.timestamp),
                        equity=float(r.equity),
                        cash=float(r.cash),
                        positions_value=float(r.positions_value),
                        realized_pnl=float(r.realized_pnl),
                        trigger=r.trigger,
                    )
                    for r in rows
                ],
            )

        return await self.db.write(read)  # two statements: one snapshot

    async def after_fills(self, fills: list[dict[str, object]]) -> HistoryPoint | None:
        """Record a point for `fills` (orders as published), valued at the last prices;
        none if the account they were made on has been reset since."""
        for fill in fills:
            price = fill.get("price")
            if isinstance(price, float | int):
                self.prices[str(fill["symbol"])] = Decimal(str(price))
        latest = max(datetime.fromisoformat(str(f["created_at"])) for f in fills)
        return await self._write("fill", made_at=latest)

    async def on_timer(self) -> HistoryPoint:
        """Value the account at market prices and record the point."""
        valued = await self.valuer.value(await self.ledger.holdings())
        for position in valued.positions:
            if position.price is not None:
                self.prices[position.symbol] = Decimal(str(position.price))
        point = await self._write("timer")
        assert point is not None  # only a fill's point is ever skipped
        return point

    async def _write(
        self, trigger: Trigger, made_at: datetime | None = None
    ) -> HistoryPoint | None:
        point = await self.db.write(
            functools.partial(
                _write_point,
                prices=dict(self.prices),
                trigger=trigger,
                now=self._now(),
                made_at=made_at,
            )
        )
        if point is not None:
            self.equity = point.equity
            self.bus.publish("portfolio", point.model_dump())
        return point

    async def run(
        self, queue: asyncio.Queue[Event], interval: float, *, spacing: float = 0.0
    ) -> None:
        """Until cancelled: a point after each burst of fills seen on `queue` (subscribed
        to the bus), at most one per `spacing` seconds, and every `interval` seconds (0:
        no timer)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + interval
        while True:
            try:
                wait = max(due - loop.time(), 0) if interval else None
                try:
                    events = [await asyncio.wait_for(queue.get(), wait)]
                except TimeoutError:
                    due = loop.time() + interval
                    await self.on_timer()
                    continue
                while not queue.empty():
                    events.append(queue.get_nowait())
                fills = _fills(events)
                if fills:
                    await self.after_fills(fills)
                    if spacing:
                        # The fills meanwhile wait on the queue and share the next point.
                        await self._sleep(spacing)
            except Exception as exc:  # a busy ledger must not end the history
                log.warning("portfolio history point failed: %s", exc)


def _fills(events: list[Event]) -> list[dict[str, object]]:
    return [e.data for e in events if e.kind == "order" and e.data.get("status") == "FILLED"]


def _write_point(
    conn: Connection,
    *,
    prices: dict[str, Decimal],
    trigger: Trigger,
    now: datetime,
    made_at: datetime | None,
) -> HistoryPoint | None:
    # A point a database crash loses leaves a gap in the curve; it holds no money.
    dialect_of(conn).without_flush(conn)
    opened = conn.execute(select(accounts.c.created_at)).scalar_one()
    if made_at is not None and made_at < opened:
        return None  # the fills' account was closed since: its books are gone
    held = _holdings(conn)
    positions_value = Decimal(0)
    for position in held.positions.values():
        if position.quantity > 0:
            price = prices.get(position.symbol)
            value = position.cost_basis if price is None else position.quantity * price
            positions_value += value.quantize(_CENT)
    equity = held.cash + positions_value
    conn.execute(
        portfolio_points.insert().values(
            account=current_account(conn),
            timestamp=now,
            trigger=trigger,
            equity=equity,
            cash=held.cash,
            positions_value=positions_value,
            realized_pnl=held.realized_pnl,
        )
    )
    return HistoryPoint(
        timestamp=utc_iso(now),
        equity=float(equity),
        cash=float(held.cash),
        positions_value=float(positions_value),
        realized_pnl=float(held.realized_pnl),
        trigger=trigger,
    )
