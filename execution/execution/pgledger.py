"""The trade's transaction on PostgreSQL: the orders queued meanwhile share one.

Every fill holds the account row's lock from its locked read to its commit. One
transaction per fill on the event loop held that lock across four round trips, each
waiting its turn on a loop busy with the other requests, and the commit's WAL flush:
the fills of every replica queued behind it (0.24x SQLite's trade rps). So, as SQLite's
writer thread does, one writer per process takes every order queued while its last batch
ran and writes them in one transaction, on the pooled asyncpg connection directly (no
greenlet bridge, no execution context per statement):

    BEGIN; lock the account row (FOR UPDATE); read every position (a later statement: it
    sees what the lock waited for); plan each order in turn on the books as the orders
    before it left them (`ledger.settle`, the function SQLite's path runs); one
    statement writes the balances, each position touched, every order and every
    Idempotency-Key's answer (arrays through `unnest`); COMMIT (one WAL flush).

An order whose planning raises fails alone (nothing of it is written). One whose
Idempotency-Key was taken over meanwhile (its answer's update finds no row) rolls the
batch back and fails with `KeyLostError`; the others run again. An error from the database
fails the batch, and each order is then tried alone, so one bad order cannot fail the
others; the database unreachable is a 503 for all. Callers hear back after the COMMIT,
so a 201 is as durable as with a transaction each. Replicas queue on the account lock a
batch at a time, and every batch plans on the books as locked: the limits hold across them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from execution import statements
from execution.broker import Books
from execution.db import PG_UNAVAILABLE, PostgresDatabase, unavailable
from execution.fills import Job, Settled, books_of, halt_of, settle
from execution.idempotency import KeyLostError
from execution.orders import OrderRecord
from execution.statements import Precompiled
from execution.trading_state import StateChange
from shared.trading import TradingState

# At most this many orders per transaction (SQLite's writer takes as many).
MAX_BATCH = 32

_ORDER_COLUMNS = (
    "order_id, symbol, side, status, requested_amount, filled_amount, quantity, price, fee, "
    "reason, risk, trace_id, idempotency_key, created_at"
)
# The batch's writes in one round trip: data-modifying CTEs all run. $7 says whether
# anything filled (else the account row is left alone).
WRITE_BATCH = f"""
WITH account AS (
    UPDATE accounts SET cash = $1, realized_pnl = $2, updated_at = $3,
        day_start = $4, day_start_equity = $5, peak_equity = $6
    WHERE id = 1 AND $7::boolean
), position AS (
    INSERT INTO positions AS p (symbol, quantity, cost_basis, realized_pnl, updated_at)
    SELECT u.*, $3 FROM unnest($8::varchar[], $9::numeric[], $10::numeric[], $11::numeric[])
        AS u(symbol, quantity, cost_basis, realized_pnl)
    ON CONFLICT (symbol) DO UPDATE SET quantity = excluded.quantity,
        cost_basis = excluded.cost_basis, realized_pnl = excluded.realized_pnl,
        updated_at = excluded.updated_at
), placed AS (
    INSERT INTO orders ({_ORDER_COLUMNS})
    SELECT order_id, symbol, side, status, requested_amount, filled_amount, quantity,
        price, fee, reason, risk::json, trace_id, idempotency_key, created_at
    FROM unnest($12::varchar[], $13::varchar[], $14::varchar[], $15::varchar[],
        $16::numeric[], $17::numeric[], $18::numeric[], $19::numeric[], $20::numeric[],
        $21::text[], $22::text[], $23::varchar[], $24::varchar[], $25::timestamptz[])
        WITH ORDINALITY AS o({_ORDER_COLUMNS}, n)
    ORDER BY n
), answered AS (
    UPDATE idempotency_keys AS k
    SET status_code = 201, response = a.response, order_id = a.order_id
    FROM unnest($26::varchar[], $27::varchar[], $28::text[], $29::varchar[])
        AS a(key, owner, response, order_id)
    WHERE k.key = a.key AND k.owner = a.owner AND k.status_code IS NULL
    RETURNING k.key
)
SELECT key FROM answered
"""
# A protection tripped by a fill of the batch (at most one: the next order sees HALTED).
WRITE_HALT = """
WITH account AS (
    UPDATE accounts SET trading_state = $1, trading_reason = $2, trading_changed_by = $3,
        trading_changed_at = $4
    WHERE id = 1
)
INSERT INTO trading_state_changes (state, reason, changed_by, changed_at)
VALUES ($1, $2, $3, $4)
"""


class _KeysLostError(Exception):
    def __init__(self, lost: set[int]) -> None:
        self.lost = lost


@dataclass
class _Batch:
    """The books as the batch's orders so far left them, and what they write."""

    account: list[Any]  # cash, realized_pnl, trading state, its reason, marks (3)
    positions: dict[str, tuple[Any, ...]]  # symbol -> (symbol, quantity, cost, realized)
    filled: bool = False
    touched: set[str] = field(default_factory=set)
    orders: list[OrderRecord] = field(default_factory=list)
    answers: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    halt: StateChange | None = None

    def books(self, symbol: str) -> Books:
        return books_of(self.account, list(self.positions.values()), symbol)

    def add(self, index: int, job: Job, settled: Settled, books: Books | None) -> None:
        order = settled.order
        self.orders.append(order)
        if job.seal is not None and settled.answer is not None:
            claim = job.seal.claim
            self.answers.append((index, claim.key, claim.owner, settled.answer, order.order_id))
        after = settled.after
        if after is None or books is None:
            return
        self.filled = True
        self.touched.add(order.symbol)
        self.account[:2] = [after.cash, after.realized_pnl]
        position = (order.symbol, after.quantity, after.cost_basis, after.symbol_realized_pnl)
        self.positions[order.symbol] = position
        if settled.assessment is not None:
            marks = settled.assessment.marks
            self.account[4:7] = [marks.day, marks.day_start_equity, marks.peak_equity]
        halt = halt_of(settled, books)
        if halt is not None:
            self.halt = halt
            self.account[2:4] = [TradingState.HALTED.value, halt.reason]

    def args(self, now: datetime) -> list[Any]:
        cash, realized, _, _, day, start, peak = self.account
        held = [self.positions[s] for s in sorted(self.touched)]
        o = self.orders
        return [
            cash,
            realized,
            now,
            day,
            _money(start),
            _money(peak),
            self.filled,
            *[[p[i] for p in held] for i in range(4)],
            [x.order_id for x in o],
            [x.symbol for x in o],
            [x.side for x in o],
            [x.status for x in o],
            [x.requested_amount for x in o],
            [x.filled_amount for x in o],
            [x.quantity for x in o],
            [x.price for x in o],
            [x.fee for x in o],
            [x.reason for x in o],
            [None if x.risk is None else orjson.dumps(x.risk).decode() for x in o],
            [x.trace_id for x in o],
            [x.idempotency_key for x in o],
            [x.created_at.astimezone(UTC) for x in o],
            *[[a[i] for a in self.answers] for i in range(1, 5)],
        ]


def _money(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class PostgresPath:
    """The ledger's hot path on PostgreSQL: one writer per process, batching (see above)."""

    def __init__(self, db: PostgresDatabase, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        dialect = db.engine.dialect
        self._holdings = Precompiled(statements.HOLDINGS, dialect)
        self._lock = Precompiled(statements.LOCK_ACCOUNT, dialect)
        self._positions = Precompiled(statements.POSITIONS, dialect)
        self._queue: list[tuple[Job, asyncio.Future[OrderRecord]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def books(self) -> Sequence[Sequence[Any]]:
        try:
            async with self.db.driver() as conn:
                rows: Sequence[Sequence[Any]] = await conn.fetch(
                    self._holdings.sql, *self._holdings.args({})
                )
                return rows
        except PG_UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    async def write(self, job: Job) -> OrderRecord:
        started = time.perf_counter()
        future: asyncio.Future[OrderRecord] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        try:
            return await future
        finally:
            if self.db.observe_write is not None:
                self.db.observe_write(time.perf_counter() - started)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            # A caller that gave up (cancelled) before its turn is not run.
            batch = [(job, future) for job, future in batch if not future.cancelled()]
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[tuple[Job, asyncio.Future[OrderRecord]]]) -> None:
        while batch:
            try:
                outcomes = await self._transaction([job for job, _ in batch])
            except _KeysLostError as lost:
                for i in sorted(lost.lost):
                    _answer(batch[i][1], KeyLostError(_KEY_LOST))
                batch = [item for i, item in enumerate(batch) if i not in lost.lost]
                continue
            except asyncio.CancelledError:  # shutting down: no one gets an answer
                for _, future in batch:
                    future.cancel()
                raise
            except PG_UNAVAILABLE as exc:
                error = unavailable(exc)
                for _, future in batch:
                    _answer(future, error)
                return
            except Exception as exc:
                if len(batch) == 1:
                    _answer(batch[0][1], exc)
                    return
                for item in batch:  # one of them made the database refuse: alone each
                    await self._run([item])
                return
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                _answer(future, outcome)
            return

    async def _transaction(self, jobs: list[Job]) -> list[OrderRecord | Exception]:
        """Run `jobs` in one transaction; what each came to (an order, or its error)."""
        async with self.db.driver() as conn, conn.transaction():
            state = _Batch(account=[], positions={})
            if any(job.plan is not None for job in jobs):
                state.account = list(await conn.fetchrow(self._lock.sql, *self._lock.args({})))
                rows = await conn.fetch(self._positions.sql, *self._positions.args({}))
                state.positions = {row[0]: tuple(row) for row in rows}
            outcomes: list[OrderRecord | Exception] = []
            for index, job in enumerate(jobs):
                try:
                    books = None if job.plan is None else state.books(job.draft.symbol)
                    settled = settle(job, books)
                except Exception as exc:  # before anything of it was written: alone
                    outcomes.append(exc)
                    continue
                state.add(index, job, settled, books)
                outcomes.append(settled.order)
            if not state.account:
                state.account = [None] * 7
            answered = await conn.fetch(WRITE_BATCH, *state.args(datetime.now(UTC)))
            lost = {a[0] for a in state.answers} - _indexes(state.answers, answered)
            if lost:
                raise _KeysLostError(lost)  # rolls the batch back
            if state.halt is not None:
                halt = state.halt
                await conn.execute(
                    WRITE_HALT, halt.state.value, halt.reason, halt.changed_by, halt.changed_at
                )
            return outcomes


_KEY_LOST = "This request's Idempotency-Key was taken over; nothing was done"


def _indexes(answers: list[tuple[int, str, str, str, str]], rows: Sequence[Any]) -> set[int]:
    keys = {row[0] for row in rows}
    return {index for index, key, *_ in answers if key in keys}


def _answer(future: asyncio.Future[OrderRecord], outcome: OrderRecord | BaseException) -> None:
    if future.cancelled():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
