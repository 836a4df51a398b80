"""Idempotency keys with Stripe's semantics, safe across processes sharing one database.

The first request with a key claims it by inserting its row (the primary key makes one
insert win, in any process). The answer is stored in that row inside the same
transaction as the order, so a key is either still in flight or answered together with
its fill: never a fill without its answer. Duplicates wait for the answer, polling the
row (and woken at once when the original runs in this process). A different body with
the same key is a 422. A claim whose request died (the process was killed) is taken
over after `lock_seconds`; the dead request wrote nothing, so re-running is safe.
Answers are kept for `ttl`, then purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from execution.db import Database
from execution.models import idempotency_keys as keys
from shared.errors import ConflictError, InvalidRequestError

_POLL_FIRST, _POLL_MAX = 0.005, 0.1
_CLAIMABLE = object()


@dataclass(frozen=True)
class Claim:
    """This request owns `key` until it stores an answer or releases it."""

    key: str
    owner: str


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: str


class KeyLostError(ConflictError):
    """The claim was taken over (this request outlived `lock_seconds`): write nothing."""


class IdempotencyStore:
    def __init__(
        self,
        db: Database,
        *,
        ttl: timedelta,
        lock_seconds: float,
        wait_seconds: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.lock = timedelta(seconds=lock_seconds)
        self.wait_seconds = wait_seconds
        self._now = now
        self._sleep = sleep
        self._local: dict[str, asyncio.Event] = {}

    async def claim(self, key: str, fingerprint: str) -> Claim | StoredAnswer:
        """Own `key`, or get the answer stored for it (waiting while it is in flight)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        pause = _POLL_FIRST
        outcome = await self._try_claim(key, fingerprint)
        while outcome is None:
            if loop.time() >= deadline:
                raise ConflictError(
                    "A request with this Idempotency-Key is still in progress; retry later"
                )
            event = self._local.get(key)
            if event is None:
                await self._sleep(pause)
            else:
                # Woken as soon as the original finishes here; still bounded by the poll.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), pause)
            pause = min(pause * 2, _POLL_MAX)
            # Waiters poll with plain reads: only a vanished or abandoned claim needs a write.
            async with self.db.engine.connect() as conn:
                verdict = self._judge(await self._row(conn, key), fingerprint)
            if verdict is not _CLAIMABLE:
                outcome = verdict if isinstance(verdict, StoredAnswer) else None
            else:
                outcome = await self._try_claim(key, fingerprint)
        return outcome

    async def _row(self, conn: AsyncConnection, key: str) -> Row[Any] | None:
        return (await conn.execute(select(keys).where(keys.c.key == key))).first()

    def _judge(self, row: Row[Any] | None, fingerprint: str) -> StoredAnswer | object | None:
        """The stored answer, None to keep waiting, or _CLAIMABLE (absent, expired, abandoned)."""
        now = self._now()
        if row is None or row.created_at <= now - self.ttl:
            return _CLAIMABLE
        if row.fingerprint != fingerprint:
            raise InvalidRequestError(
                "Idempotency-Key was already used with a different request body",
                extra={"errors": [{"field": "Idempotency-Key", "location": "header"}]},
            )
        if row.status_code is not None:
            return StoredAnswer(row.status_code, row.response)
        return _CLAIMABLE if row.locked_at <= now - self.lock else None

    async def _try_claim(self, key: str, fingerprint: str) -> Claim | StoredAnswer | None:
        now = self._now()
        owner = str(uuid.uuid4())
        async with self.db.writer.begin() as conn:
            if await self._insert(conn, key, fingerprint, owner, now):
                return self._claimed(key, owner)
            row = await self._row(conn, key)
            verdict = self._judge(row, fingerprint)
            if verdict is not _CLAIMABLE:
                return verdict if isinstance(verdict, StoredAnswer) else None
            if row is None:
                return None  # released since our insert: the next round inserts
            # Expired, or abandoned by a request that died: take it over, compare-and-swap
            # on the owner (and on the state we judged, should the original answer now).
            still = (
                keys.c.status_code.is_(None)
                if row.status_code is None
                else keys.c.created_at == row.created_at
            )
            taken = await conn.execute(
                update(keys)
                .where(keys.c.key == key, keys.c.owner == row.owner, still)
                .values(
                    owner=owner,
                    fingerprint=fingerprint,
                    locked_at=now,
                    created_at=now,
                    status_code=None,
                    response=None,
                    order_id=None,
                )
                .returning(keys.c.key)
            )
            if taken.first() is None:
                return None
        return self._claimed(key, owner)

    def _claimed(self, key: str, owner: str) -> Claim:
        self._local[key] = asyncio.Event()
        return Claim(key, owner)

    async def _insert(
        self, conn: AsyncConnection, key: str, fingerprint: str, owner: str, now: datetime
    ) -> bool:
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        stmt = (
            dialect.insert(keys)
            .values(key=key, fingerprint=fingerprint, owner=owner, locked_at=now, created_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(keys.c.key)
        )
        return (await conn.execute(stmt)).first() is not None

    async def answer(
        self, conn: AsyncConnection, claim: Claim, status_code: int, body: str, order_id: str
    ) -> None:
        """Store the answer in the caller's transaction; raise if the claim was lost."""
        stored = await conn.execute(
            update(keys)
            .where(keys.c.key == claim.key, keys.c.owner == claim.owner)
            .values(status_code=status_code, response=body, order_id=order_id)
            .returning(keys.c.key)
        )
        if stored.first() is None:
            raise KeyLostError("This request's Idempotency-Key was taken over; nothing was done")

    async def release_in(self, conn: AsyncConnection, claim: Claim) -> None:
        """Forget an unanswered claim in the caller's transaction, so a retry runs afresh."""
        await conn.execute(
            delete(keys).where(
                keys.c.key == claim.key, keys.c.owner == claim.owner, keys.c.status_code.is_(None)
            )
        )

    async def release(self, claim: Claim) -> None:
        async with self.db.writer.begin() as conn:
            await self.release_in(conn, claim)

    def finished(self, claim: Claim) -> None:
        """Wake this process's duplicates waiting on the claim."""
        event = self._local.pop(claim.key, None)
        if event is not None:
            event.set()

    async def purge_expired(self) -> int:
        """Delete answers older than the TTL; returns how many."""
        cutoff = self._now() - self.ttl
        async with self.db.writer.begin() as conn:
            result = await conn.execute(
                delete(keys).where(keys.c.created_at <= cutoff).returning(keys.c.key)
            )
            return len(result.all())
