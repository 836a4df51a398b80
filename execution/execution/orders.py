"""Orders as the ledger keeps them, and the queries that write and page through them."""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Row, Select, select

from execution.db import Database
from execution.models import account_resets, orders
from shared.errors import InvalidRequestError, NotFoundError

Status = Literal["FILLED", "REJECTED"]
# The rows one CSV export reads per query while streaming.
EXPORT_PAGE = 500


@dataclass(frozen=True, kw_only=True)
class OrderRecord:
    """One trade attempt; quote-currency amounts exclude the fee."""

    order_id: str
    symbol: str
    side: str
    status: Status
    requested_amount: Decimal
    filled_amount: Decimal
    quantity: Decimal
    price: Decimal | None
    fee: Decimal
    reason: str
    risk: dict[str, Any] | None
    trace_id: str | None
    idempotency_key: str | None
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class OrderFilter:
    """Which orders a list shows; `None` is "any". `since` inclusive, `until` exclusive."""

    symbol: str | None = None
    side: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        for column, value in (
            (orders.c.symbol, self.symbol),
            (orders.c.side, self.side),
            (orders.c.status, self.status),
        ):
            if value is not None:
                query = query.where(column == value)
        if self.since is not None:
            query = query.where(orders.c.created_at >= self.since)
        if self.until is not None:
            query = query.where(orders.c.created_at < self.until)
        return query


@dataclass(frozen=True)
class Listed:
    """An order as a list shows it: the record and the paper account it belongs to."""

    record: OrderRecord
    account: int


def order_params(order: OrderRecord) -> dict[str, Any]:
    """`order` as the parameters of `statements.INSERT_ORDER`."""
    return {f"orders_{name}": getattr(order, name) for name in _FIELDS}


_FIELDS = tuple(OrderRecord.__dataclass_fields__)


def _record(row: Row[Any]) -> OrderRecord:
    return OrderRecord(**{name: getattr(row, name) for name in _FIELDS})


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The order sequence number in a cursor `encode_cursor` made, or a 422.

    Strict: only the exact text this service issues is a cursor. `int()` alone would take
    `seq: 5`, `seq:+5`, `seq:5_0` or Arabic-Indic digits, and lenient base64 ignores
    stray characters; the canonical round trip refuses them all.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, seq = raw.partition(":")
        value = int(seq) if seq.isascii() and seq.isdigit() else -1
        # Beyond a 64-bit integer the database cannot even compare it (a 500, not a 422).
        if prefix != "seq" or not 0 <= value < 2**63 or encode_cursor(value) != cursor:
            raise ValueError("not a cursor")
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequestError("cursor: not a cursor this service issued") from exc


class OrderBook:
    """Reads of the orders table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, order_id: str) -> Listed:
        query = select(orders).where(orders.c.order_id == order_id)
        row = await self.db.read(lambda conn: conn.execute(query).first())
        if row is None:
            # Not echoed: the id is whatever the caller put in the path, of any length.
            raise NotFoundError("No order with this id")
        return Listed(_record(row), _account_of(row.seq, await self._boundaries()))

    async def page(
        self, *, limit: int, cursor: str | None, where: OrderFilter | None = None
    ) -> tuple[list[Listed], str | None]:
        """Up to `limit` orders, newest first, after `cursor`; and the next page's cursor."""
        query = (where or OrderFilter()).apply(select(orders))
        query = query.order_by(orders.c.seq.desc()).limit(limit + 1)
        if cursor is not None:
            query = query.where(orders.c.seq < decode_cursor(cursor))
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].seq) if more else None
        bounds = await self._boundaries() if rows else []
        return [Listed(_record(row), _account_of(row.seq, bounds)) for row in rows], next_cursor

    async def export(self, where: OrderFilter) -> AsyncIterator[list[Listed]]:
        """Every order `where` selects, newest first, a page at a time (for streaming)."""
        cursor: str | None = None
        while True:
            page, cursor = await self.page(limit=EXPORT_PAGE, cursor=cursor, where=where)
            yield page
            if cursor is None:
                return

    async def _boundaries(self) -> list[int]:
        """The last order seq of each closed account, oldest account first."""
        query = select(account_resets.c.last_order_seq).order_by(account_resets.c.account)
        return list(await self.db.read(lambda conn: conn.execute(query).scalars().all()))


def _account_of(seq: int, boundaries: list[int]) -> int:
    """The account (1 the first) an order of `seq` was placed on."""
    return bisect.bisect_left(boundaries, seq) + 1
