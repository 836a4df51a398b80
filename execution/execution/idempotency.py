"""Idempotency keys with Stripe's semantics, safe across processes sharing one database.

The first request with a key claims it by inserting its row (the primary key makes one
insert win, in any process). The answer is stored in that row inside the same
transaction as the order, so a key is either still in flight or answered together with
its fill: never a fill without its answer. Duplicates wait for the answer, polling the
row (and woken at once when the original runs in this process). A different body with
the same key is a 422. A claim is a lease: while its request runs, the owner renews
`locked_at` every third of `lock_seconds` (`held`), so a claim not renewed for
`lock_seconds` belongs to a request that died with its process, and a retry takes it
over within seconds: the dead request committed nothing, so re-running is safe. A
request that only stalled past its lease (or a skewed clock) loses the key instead: its
answer is written only if it still owns the key, in the fill's own transaction, so
there is never a second fill. Answers are kept for `ttl`, then purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from execution import statements
from execution.db import Database
from execution.dialects import dialect_of
from execution.models import idempotency_keys as keys
from execution.statements import params
from shared.auth import Caller
from shared.errors import ConflictError, InvalidRequestError

_POLL_FIRST, _POLL_MAX = 0.005, 0.1
_WAIT, _CLAIMABLE = object(), object()
log = logging.getLogger(__name__)


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


def scoped_key(caller: Caller, key: str) -> str:
    """The stored form of an Idempotency-Key: it belongs to the API key that sent it.

    The same Idempotency-Key from another API key is another request. Hashed, so the
    stored key has one length (the column's 255 fits any header) and holds no key digest.
    """
    return hashlib.sha256(f"{caller.digest}\n{key}".encode()).hexdigest()


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
        deadline = self._now() + timedelta(seconds=self.wait_seconds)
        pause = _POLL_FIRST
        query = select(keys).where(keys.c.key == key)
        outcome = await self._try_claim(key, fingerprint)
        while outcome is _WAIT:
            if self._now() >= deadline:
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
            row = await self.db.read(lambda conn: conn.execute(query).first())
            outcome = self._judge(row, fingerprint)
            if outcome is _CLAIMABLE:
                outcome = await self._try_claim(key, fingerprint)
        if isinstance(outcome, Claim):
            self._local[key] = asyncio.Event()
        assert isinstance(outcome, Claim | StoredAnswer)
        return outcome

    def _judge(self, row: Row[Any] | None, fingerprint: str) -> Any:
        """The stored answer, _WAIT, or _CLAIMABLE (absent, expired, or abandoned)."""
        now = self._now()
        if row is None or row.created_at <= now - self.ttl:
            return _CLAIMABLE
        if row.fingerprint != fingerprint:
            detail = "Idempotency-Key was already used with a different request body"
            error = {
                "field": "Idempotency-Key",
                "location": "header",
                "message": detail,
                "type": "idempotency_key_reused",
            }
            raise InvalidRequestError(detail, extra={"errors": [error]})
        if row.status_code is not None:
            return StoredAnswer(row.status_code, row.response)
        return _CLAIMABLE if row.locked_at <= now - self.lock else _WAIT

    async def _try_claim(self, key: str, fingerprint: str) -> Any:
        claim = Claim(key, str(uuid.uuid4()))
        return await self.db.write(
            functools.partial(self._claim_tx, claim=claim, fingerprint=fingerprint)
        )

    def _claim_tx(self, conn: Connection, *, claim: Claim, fingerprint: str) -> Any:
        now = self._now()
        mine = {"owner": claim.owner, "fingerprint": fingerprint, "locked_at": now}
        inserted = conn.execute(
            dialect_of(conn)
            .insert(keys)
            .values(key=claim.key, created_at=now, **mine)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(keys.c.key)
        ).first()
        if inserted is not None:
            return claim
        row = conn.execute(select(keys).where(keys.c.key == claim.key)).first()
        verdict = self._judge(row, fingerprint)
        if verdict is not _CLAIMABLE or row is None:
            return _WAIT if row is None else verdict  # None: released since our insert
        # Expired, or abandoned by a request that died: take it over, compare-and-swap on
        # the owner and on the state we judged (the original may answer meanwhile).
        still = (
            keys.c.status_code.is_(None)
            if row.status_code is None
            else keys.c.created_at == row.created_at
        )
        taken = conn.execute(
            update(keys)
            .where(keys.c.key == claim.key, keys.c.owner == row.owner, still)
            .values(created_at=now, status_code=None, response=None, order_id=None, **mine)
            .returning(keys.c.key)
        ).first()
        return _WAIT if taken is None else claim

    @contextlib.asynccontextmanager
    async def held(self, claim: Claim) -> AsyncIterator[None]:
        """Renew the claim's lease while the block runs (a trade takes milliseconds, so
        the renewal rarely runs at all)."""
        renewal = asyncio.create_task(self._renew(claim))
        try:
            yield
        finally:
            renewal.cancel()

    async def _renew(self, claim: Claim) -> None:
        query = (
            update(keys)
            .where(keys.c.key == claim.key, keys.c.owner == claim.owner)
            .where(keys.c.status_code.is_(None))
        )
        while True:
            await self._sleep(self.lock.total_seconds() / 3)
            try:
                await self.db.write(lambda conn: conn.execute(query.values(locked_at=self._now())))
            except Exception as exc:  # a missed renewal at worst lets a retry take over
                log.warning("could not renew the Idempotency-Key claim: %s", exc)

    async def release(self, claim: Claim) -> None:
        """Forget an unanswered claim, so a retry with the key runs afresh."""
        query = delete(keys).where(
            keys.c.key == claim.key, keys.c.owner == claim.owner, keys.c.status_code.is_(None)
        )
        await self.db.write(lambda conn: conn.execute(query))

    def finished(self, claim: Claim) -> None:
        """Wake this process's duplicates waiting on the claim."""
        event = self._local.pop(claim.key, None)
        if event is not None:
            event.set()

    async def purge_expired(self) -> int:
        """Delete answers older than the TTL; returns how many."""
        query = delete(keys).where(keys.c.created_at <= self._now() - self.ttl)
        return await self.db.write(
            lambda conn: len(conn.execute(query.returning(keys.c.key)).all())
        )


def answer_in(conn: Connection, claim: Claim, status_code: int, body: str, order_id: str) -> None:
    """Store the answer in `conn`'s transaction (the order's); raise if the claim was lost."""
    values = {"key": claim.key, "owner": claim.owner, "status_code": status_code}
    values |= {"response": body, "order_id": order_id}
    stored = statements.run(conn, statements.KEY_ANSWER, params(keys, values))
    if not stored:
        raise KeyLostError("This request's Idempotency-Key was taken over; nothing was done")
