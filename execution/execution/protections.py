"""Protections that halt trading by themselves: MAX_DAILY_LOSS_SHARE and MAX_DRAWDOWN_SHARE.

Equity is measured at every fill, inside the fill's transaction (the books just written,
valued at the prices Risk read from the gateway for that decision, the traded symbol at
its quote), and on a timer with the portfolio's own valuation (`PortfolioValuer`: the
gateway's prices). Two marks live on the account row: the equity at the start of the UTC
day and the peak equity since trading last resumed. When equity falls the configured
share below either, the trading state turns HALTED, `changed_by: protection:<name>`,
with the figures in the reason. It stays HALTED across restarts (it is in the ledger);
only an operator's PUT resumes trading, and resuming restarts both marks from there.
Marks are written only when they change (a new day, a new peak), so an ordinary fill
pays no extra statement.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from execution.db import Database
from execution.models import ACCOUNT_ID, accounts
from execution.trading_state import StateChange, write_change
from shared.trading import TradingState

if TYPE_CHECKING:  # the broker's books carry the marks defined here
    from execution.broker import Books, Costs

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Marks:
    """The protections' reference points, as stored on the account row."""

    day: str | None = None  # YYYY-MM-DD (UTC) that `day_start_equity` belongs to
    day_start_equity: Decimal | None = None
    peak_equity: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class ProtectionLimits:
    daily_loss_share: Decimal
    drawdown_share: Decimal


@dataclass(frozen=True, slots=True)
class Assessment:
    marks: Marks
    trip: StateChange | None


def assess(
    marks: Marks,
    *,
    before: Decimal,
    after: Decimal,
    now: datetime,
    limits: ProtectionLimits,
) -> Assessment:
    """The marks after a measurement (`before` the fill, `after` it; equal on the timer),
    and the halt it calls for, if any."""
    day = now.astimezone(UTC).date().isoformat()
    start = marks.day_start_equity
    if marks.day != day or start is None:
        start = before  # the first measurement of the day opens it
    peak = max(marks.peak_equity if marks.peak_equity is not None else before, before, after)
    kept = Marks(day=day, day_start_equity=start, peak_equity=peak)
    trip = None
    if start > 0 and (start - after) / start > limits.daily_loss_share:
        trip = _halt(
            "daily_loss",
            f"equity {after:,.2f} is {(start - after) / start:.4%} below {start:,.2f} at the "
            f"start of the UTC day {day} (MAX_DAILY_LOSS_SHARE {limits.daily_loss_share})",
            now,
        )
    elif peak > 0 and (peak - after) / peak > limits.drawdown_share:
        trip = _halt(
            "drawdown",
            f"equity {after:,.2f} is {(peak - after) / peak:.4%} below its peak {peak:,.2f} "
            f"(MAX_DRAWDOWN_SHARE {limits.drawdown_share})",
            now,
        )
    return Assessment(kept, trip)


def _halt(name: str, reason: str, now: datetime) -> StateChange:
    return StateChange(
        state=TradingState.HALTED, reason=reason, changed_by=f"protection:{name}", changed_at=now
    )


def apply_in(
    conn: Connection,
    *,
    marks: Marks,
    state: TradingState,
    before: Decimal,
    after: Decimal,
    now: datetime,
    limits: ProtectionLimits,
) -> StateChange | None:
    """Measure inside a transaction holding the account lock; write what changed."""
    found = assess(marks, before=before, after=after, now=now, limits=limits)
    return record_in(conn, found, marks=marks, state=state)


def record_in(
    conn: Connection, found: Assessment, *, marks: Marks, state: TradingState
) -> StateChange | None:
    """Write an assessment made against `marks` and `state` (as locked): the marks if they
    moved, the halt if it trips one; the halt written, if any."""
    if found.marks != marks:
        conn.execute(
            accounts.update()
            .where(accounts.c.id == ACCOUNT_ID)
            .values(
                day_start=found.marks.day,
                day_start_equity=found.marks.day_start_equity,
                peak_equity=found.marks.peak_equity,
            )
        )
    trip = tripped(found, state)
    if trip is not None:
        write_change(conn, change=trip)
    return trip


def tripped(found: Assessment, state: TradingState) -> StateChange | None:
    """The halt `found` calls for, unless trading is halted already (said in the log)."""
    if found.trip is None or state is TradingState.HALTED:
        return None
    log.warning("trading HALTED by %s: %s", found.trip.changed_by, found.trip.reason)
    return found.trip


def marks_of(day: str | None, start: object, peak: object) -> Marks:
    """Marks from the account row's columns as a driver returns them (text or Decimal)."""
    return Marks(
        day=day,
        day_start_equity=None if start is None else Decimal(str(start)),
        peak_equity=None if peak is None else Decimal(str(peak)),
    )


_LOCKED_MARKS = (
    select(
        accounts.c.day_start,
        accounts.c.day_start_equity,
        accounts.c.peak_equity,
        accounts.c.trading_state,
    )
    .where(accounts.c.id == ACCOUNT_ID)
    .with_for_update()
)


class Protections:
    """The timer's side: measure `equity()` every `every` seconds and apply the limits."""

    def __init__(
        self,
        db: Database,
        limits: ProtectionLimits,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.limits = limits
        self._clock = clock

    async def check(self, equity: Decimal) -> StateChange | None:
        """Apply the limits to `equity` measured now; the halt written, if any."""
        body = functools.partial(self._check_in, equity=equity, now=self._clock())
        return await self.db.write(body)

    def _check_in(self, conn: Connection, *, equity: Decimal, now: datetime) -> StateChange | None:
        day, start, peak, state = conn.execute(_LOCKED_MARKS).one()
        return apply_in(
            conn,
            marks=marks_of(day, start, peak),
            state=TradingState(state),
            before=equity,
            after=equity,
            now=now,
            limits=self.limits,
        )

    async def run(self, equity: Callable[[], Awaitable[Decimal | None]], every: float) -> None:
        """Measure forever, every `every` seconds; a failed measurement is logged, not fatal."""
        while True:
            await asyncio.sleep(every)
            try:
                measured = await equity()
                if measured is not None:
                    await self.check(measured)
            except Exception as exc:
                log.warning("protection check failed: %s", exc)


def fill_measurer(
    symbol: str,
    decision: Mapping[str, Any],
    costs: Costs,
    limits: ProtectionLimits,
    clock: Callable[[], datetime],
) -> Callable[[Books, Books], Assessment] | None:
    """The measurement of equity at a fill, made inside its transaction on the books before
    and after it, at the prices of Risk's valuation for this decision (the gateway's); None
    when the decision has none. The ledger writes what it finds (`record_in`)."""
    prices = _valuation_prices(decision)
    if prices is None:
        return None
    fee_rate = costs.fee_bps / 10_000

    def equity(cash: Decimal, held: Mapping[str, tuple[Decimal, Decimal]]) -> Decimal:
        total = cash
        for held_symbol, (quantity, cost_basis) in held.items():
            if quantity <= 0:
                continue
            price = prices.get(held_symbol)
            if price is None:  # bought since Risk looked: its average fill price
                price = cost_basis / quantity / (1 + fee_rate)
            total += quantity * price
        return total

    def measure(before: Books, after: Books) -> Assessment:
        held_after = dict(before.held) | {symbol: (after.quantity, after.cost_basis)}
        return assess(
            before.marks,
            before=equity(before.cash, before.held),
            after=equity(after.cash, held_after),
            now=clock(),
            limits=limits,
        )

    return measure


def _valuation_prices(decision: Mapping[str, Any]) -> dict[str, Decimal] | None:
    """The prices Risk valued the portfolio at, or None when its answer has none."""
    valuation = decision.get("valuation")
    if not isinstance(valuation, dict) or not valuation:
        return None
    try:
        prices = {s: Decimal(str(v["price"])) for s, v in valuation.items()}
    except (KeyError, TypeError, InvalidOperation):
        return None
    return prices if all(p.is_finite() and p > 0 for p in prices.values()) else None
