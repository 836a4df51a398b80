"""Idempotency-Key with Stripe's semantics, through the API and at the store."""

from __future__ import annotations

import asyncio
import functools
import itertools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from execution.config import Settings
from execution.db import open_database
from execution.idempotency import Claim, IdempotencyStore, KeyLostError, StoredAnswer, answer_in
from execution.migrate import migrate
from execution.models import idempotency_keys, orders
from sqlalchemy import Connection, Select, Update, delete, func, select, update

from execution import idempotency
from shared.errors import ConflictError, InvalidRequestError
from shared.problems import Problem
from tests.unit.execution.conftest import StartApp
from tests.unit.execution.stubs import RiskStub, approve_all, problem

BODY = {"symbol": "BTC-USD", "side": "buy", "amount": 250}


async def count_filled(database_url: str) -> int:
    db = open_database(Settings(database_url=database_url))
    query = select(func.count()).select_from(orders).where(orders.c.status == "FILLED")
    try:
        return int(await db.read(lambda conn: conn.execute(query).scalar_one()))
    finally:
        await db.dispose()


async def test_50_concurrent_duplicates_fill_once(
    client: httpx.AsyncClient, risk: RiskStub, database_url: str
) -> None:
    """50 concurrent POSTs with one key: exactly one fill and 50 identical 201 bodies."""
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-50"})
            for _ in range(50)
        )
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert responses[0].json()["status"] == "FILLED"
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 49
    assert await count_filled(database_url) == 1
    assert len(risk.requests) == 1
    assert (await client.get("/api/v1/portfolio")).json()["cash"] == 10_000 - 250


async def test_replay_after_completion_is_the_stored_answer(client: httpx.AsyncClient) -> None:
    """A later retry with the key gets the same body, even after the books changed, marked
    Idempotent-Replayed (the first answer is not)."""
    first = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-1"})
    await client.post("/api/v1/trade", json=BODY)
    again = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-1"})
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    stored = (await client.get(f"/api/v1/orders/{first.json()['order_id']}")).json()
    assert stored.pop("account") == 1  # a look-up adds the account the order was placed on
    assert stored == first.json()


@pytest.mark.parametrize(
    "change", [{"amount": 251}, {"side": "sell"}, {"symbol": "ETH-USD"}], ids=str
)
async def test_same_key_other_body_is_422(
    client: httpx.AsyncClient, risk: RiskStub, change: dict[str, object]
) -> None:
    """Reusing a key with another amount, side or symbol is a 422 `Problem` naming the header."""
    first = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-2"})
    assert first.status_code == 201
    other = await client.post(
        "/api/v1/trade", json=BODY | change, headers={"Idempotency-Key": "k-2"}
    )
    assert other.status_code == 422, other.text
    assert "Idempotent-Replayed" not in other.headers
    assert len(risk.requests) == 1  # the second request never reached Risk
    problem = Problem.model_validate(other.json())  # every `errors` item complete
    assert problem.errors is not None
    assert [(e.field, e.location, e.type) for e in problem.errors] == [
        ("Idempotency-Key", "header", "idempotency_key_reused")  # what a client tells apart
    ]
    assert problem.detail == "Idempotency-Key was already used with a different request body"


async def test_503_is_not_stored_so_a_retry_trades(
    start: StartApp, risk: RiskStub, dead_url: str
) -> None:
    """After Risk was down, a retry with the same key runs afresh and fills at once: the key
    was released, not left for its lease to lapse (the retry waits a second at most)."""
    async with start(risk_url=dead_url) as client:
        down = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-3"})
    assert down.status_code == 503
    async with start(idempotency_wait_seconds=1, idempotency_lock_seconds=60) as client:
        retry = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-3"})
        assert (retry.status_code, retry.json()["status"]) == (201, "FILLED")
        assert len((await client.get("/api/v1/orders")).json()["orders"]) == 2


async def test_a_keyed_trade_is_known_by_its_key_to_risk_and_on_the_order(
    client: httpx.AsyncClient, risk: RiskStub, database_url: str
) -> None:
    """Risk is asked under the stored key (so a take-over's retry of the request is the same
    request to Risk), and the order row records the key it was placed under."""
    first = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-6"})
    db = open_database(Settings(database_url=database_url))
    query = select(orders.c.idempotency_key).where(orders.c.order_id == first.json()["order_id"])
    try:
        stored = await db.read(lambda conn: conn.execute(select(idempotency_keys.c.key)).all())
        on_order = await db.read(lambda conn: conn.execute(query).scalar_one())
    finally:
        await db.dispose()
    assert [row.key for row in stored] == [on_order]
    assert risk.keys == [f"execution-{on_order}"]


# Holds SQLite's file write lock from outside the service: a SQLite-only case.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_failed_release_still_answers_the_trades_error(
    start: StartApp, risk: RiskStub, database_url: str
) -> None:
    """The ledger locked while Risk decides: the fill fails, freeing the key fails too, and
    the answer is still the fill's 503 with Retry-After, not a 500 from the release."""
    blocker = sqlite3.connect(
        database_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )

    def lock_then_approve(body: dict[str, Any]) -> dict[str, Any]:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the ledger from here on
        return approve_all(body)

    risk.rule = lock_then_approve
    try:
        async with start(sqlite_busy_timeout_seconds=0.1) as client:
            answer = await client.post(
                "/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-7"}
            )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["service"] == "database"


@pytest.mark.parametrize("refusal", ["not approved", "risk 4xx"])
async def test_a_rejected_answer_is_stored_and_replayed(
    start: StartApp, risk: RiskStub, refusal: str
) -> None:
    """Risk refusing (not approved, or a 4xx) is an answer like a fill: a retry with the key
    replays it without asking Risk again."""
    if refusal == "not approved":
        risk.rule = lambda body: approve_all(body) | {"approved": False, "reason": "VaR limit"}
    else:
        risk.rule = lambda body: problem(422, "unknown symbol", "/api/v1/approve-trade")
    async with start(idempotency_wait_seconds=1) as client:
        first = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-4"})
        again = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-4"})
    assert (first.status_code, first.json()["status"]) == (201, "REJECTED")
    assert (again.status_code, again.content) == (201, first.content)
    assert len(risk.requests) == 1


async def test_a_trade_slower_than_its_lease_renews_its_claim(
    start: StartApp, risk: RiskStub, database_url: str
) -> None:
    """While Risk takes longer than `idempotency_lock_seconds` to decide, the trade renews
    its claim's lease (so no retry takes the key over), then fills and answers."""
    renewed = threading.Event()
    risk.rule = lambda body: approve_all(body) if renewed.wait(30) else {"approved": False}
    db = open_database(Settings(database_url=database_url))
    lease = select(idempotency_keys.c.created_at, idempotency_keys.c.locked_at)
    try:
        async with start(idempotency_lock_seconds=1) as client:
            trade = asyncio.create_task(
                client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-5"})
            )
            for _ in range(1000):  # a deadline-bounded poll for a renewal's write
                row = await db.read(lambda conn: conn.execute(lease).first())
                if row is not None and row.locked_at > row.created_at:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the claim was never renewed")
            renewed.set()
            response = await trade
    finally:
        renewed.set()
        await db.dispose()
    assert (response.status_code, response.json()["status"]) == (201, "FILLED")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store_and_clock(database_url: str) -> AsyncIterator[tuple[IdempotencyStore, Clock]]:
    db = open_database(Settings(database_url=database_url))
    await migrate(db, starting_cash=Settings().starting_cash)
    clock = Clock()

    async def no_sleep(_: float) -> None:
        clock.now += timedelta(seconds=1)  # each poll lets a second pass
        await asyncio.sleep(0)

    store = IdempotencyStore(
        db,
        ttl=timedelta(hours=24),
        lock_seconds=60,
        wait_seconds=3600,
        now=clock,
        sleep=no_sleep,
    )
    yield store, clock
    await db.dispose()


async def answer(store: IdempotencyStore, claim: Claim, body: str) -> None:
    await store.db.write(lambda conn: answer_in(conn, claim, 201, body, "order-1"))
    store.finished(claim)


async def test_abandoned_claim_is_taken_over(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A claim left in flight by a dead request is taken over after the lock time."""
    store, _ = store_and_clock
    dead = await store.claim("k", "fp")
    assert isinstance(dead, Claim)
    store._local.clear()  # the claiming request died with its process
    second = await store.claim("k", "fp")
    assert isinstance(second, Claim)
    assert second.owner != dead.owner
    with pytest.raises(KeyLostError) as lost:
        await answer(store, dead, "{}")  # the dead owner's late write is refused
    assert lost.value.detail == "This request's Idempotency-Key was taken over; nothing was done"


async def test_a_claim_is_abandoned_once_a_whole_lease_passed_unrenewed(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A claim not renewed for exactly `lock_seconds` is taken over at once, no waiting."""
    store, clock = store_and_clock
    store.wait_seconds = 0  # any wait would be a 409
    dead = await store.claim("k", "fp")
    assert isinstance(dead, Claim)
    store._local.clear()  # the claiming request died with its process
    clock.now += timedelta(seconds=60)
    second = await store.claim("k", "fp")
    assert isinstance(second, Claim)
    assert second.owner != dead.owner


async def test_a_duplicate_in_this_process_is_woken_by_the_answer(
    store_and_clock: tuple[IdempotencyStore, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the original runs in this process a duplicate waits for its wake-up, which
    comes with the answer: its polls never need to sleep, nor to time out."""
    polling, clock = store_and_clock
    # Polls an hour apart: within the test only the wake-up can answer the duplicate.
    monkeypatch.setattr(idempotency, "_POLL_FIRST", 3600.0)
    monkeypatch.setattr(idempotency, "_POLL_MAX", 3600.0)

    async def never(_: float) -> None:
        await asyncio.Future()  # a poll's sleep that never ends: only the wake-up answers

    store = IdempotencyStore(
        polling.db, ttl=polling.ttl, lock_seconds=60, wait_seconds=5, now=clock, sleep=never
    )
    first = await store.claim("k", "fp")
    assert isinstance(first, Claim)
    duplicate = asyncio.create_task(store.claim("k", "fp"))
    with pytest.raises(TimeoutError):  # in flight: the duplicate waits
        await asyncio.wait_for(asyncio.shield(duplicate), 0.2)
    await answer(store, first, '{"n":1}')
    assert await asyncio.wait_for(duplicate, 10) == StoredAnswer(201, '{"n":1}')


async def test_expired_answer_is_forgotten(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """After the TTL a key is new again; before it, the answer is replayed."""
    store, clock = store_and_clock
    first = await store.claim("k", "fp")
    assert isinstance(first, Claim)
    await answer(store, first, '{"n":1}')
    clock.now += timedelta(hours=23)
    assert await store.claim("k", "fp") == StoredAnswer(201, '{"n":1}')
    clock.now += timedelta(hours=1)
    assert isinstance(await store.claim("k", "other"), Claim)


async def test_purge_deletes_only_expired_keys(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """The periodic purge removes keys the TTL old or older (the age at which a claim
    takes them over as new) and keeps younger ones."""
    store, clock = store_and_clock
    await answer(store, await store.claim("old", "fp"), "{}")  # type: ignore[arg-type]
    clock.now += timedelta(hours=12)
    await answer(store, await store.claim("young", "fp"), "{}")  # type: ignore[arg-type]
    clock.now += timedelta(hours=12)  # "old" is exactly the TTL old
    assert await store.purge_expired() == 1
    query = select(idempotency_keys.c.key)
    left = await store.db.read(lambda conn: conn.execute(query).scalars().all())
    assert left == ["young"]


async def test_a_released_claim_is_free_at_once_and_only_its_owner_releases_it(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """After a release a retry claims the key without waiting; a stale owner's release
    later leaves the new owner's claim in place."""
    store, clock = store_and_clock
    first = await store.claim("k", "fp")
    assert isinstance(first, Claim)
    await store.release(first)
    store.finished(first)
    start = clock.now
    second = await store.claim("k", "fp")
    assert isinstance(second, Claim)
    assert clock.now == start  # no poll, no wait for a lease to lapse
    await store.release(first)
    query = select(idempotency_keys.c.owner).where(idempotency_keys.c.key == "k")
    owner = await store.db.read(lambda conn: conn.execute(query).scalar_one())
    assert owner == second.owner


async def test_mismatch_while_in_flight_is_422(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A different body with an in-flight key is refused at once, not after waiting."""
    store, _ = store_and_clock
    assert isinstance(await store.claim("k", "fp"), Claim)
    with pytest.raises(InvalidRequestError):
        await store.claim("k", "other")


async def test_duplicate_gives_up_with_409_after_the_wait(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A duplicate still waiting after `wait_seconds` for a live original gets a 409."""
    store, clock = store_and_clock
    store.wait_seconds = 5  # the fake sleep lets a second pass per poll
    assert isinstance(await store.claim("k", "fp"), Claim)
    store._local.clear()  # the original runs in another process
    start = clock.now
    with pytest.raises(ConflictError) as busy:
        await store.claim("k", "fp")
    assert clock.now - start == timedelta(seconds=5)  # not a poll longer
    assert busy.value.detail == (
        "A request with this Idempotency-Key is still in progress; retry later"
    )


async def test_a_renewed_claim_is_not_taken_over_and_a_dead_one_is(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """While its owner renews the lease a claim is kept past `lock_seconds`; once the owner
    is gone, a retry takes it over after one lease."""
    waiter, clock = store_and_clock
    waiter.wait_seconds = 5  # the fake sleep lets a second pass per poll
    ticks: asyncio.Queue[None] = asyncio.Queue()

    async def tick(_: float) -> None:
        await ticks.get()

    owner = IdempotencyStore(
        waiter.db, ttl=waiter.ttl, lock_seconds=60, wait_seconds=5, now=clock, sleep=tick
    )
    claim = await owner.claim("k", "fp")
    assert isinstance(claim, Claim)
    query = select(idempotency_keys.c.locked_at).where(idempotency_keys.c.key == "k")

    async def locked_at() -> datetime:
        return await waiter.db.read(lambda conn: conn.execute(query).scalar_one())

    async with owner.held(claim):
        clock.now += timedelta(seconds=50)
        ticks.put_nowait(None)  # one renewal
        for _ in range(500):  # a deadline-bounded poll for the renewal's write
            if await locked_at() == clock.now:
                break
            await asyncio.sleep(0.01)
        assert await locked_at() == clock.now
        clock.now += timedelta(seconds=50)  # 100 s since the claim, 50 since the renewal
        with pytest.raises(ConflictError):
            await waiter.claim("k", "fp")  # still in flight: waits, then 409
    # The owner died: no renewal, no answer, no release.
    clock.now += timedelta(seconds=61)
    taken = await waiter.claim("k", "fp")
    assert isinstance(taken, Claim)
    assert taken.owner != claim.owner


async def test_a_duplicate_of_a_stuck_original_in_this_process_still_gives_up(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """Waiting for the wake-up of an original in this process is bounded by the poll: if
    the original never finishes, its duplicate still gets its 409 after the wait."""
    polling, _ = store_and_clock
    start, reads = datetime(2025, 1, 1, tzinfo=UTC), itertools.count()

    def ticking() -> datetime:  # a second passes each time the time is read
        return start + timedelta(seconds=next(reads))

    store = IdempotencyStore(
        polling.db, ttl=polling.ttl, lock_seconds=60, wait_seconds=5, now=ticking
    )
    assert isinstance(await store.claim("k", "fp"), Claim)  # never answered nor finished
    with pytest.raises(ConflictError):
        await asyncio.wait_for(store.claim("k", "fp"), 10)


async def test_a_stored_answer_is_replayed_at_once(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A retry of an answered key gets the answer from its first look, without a poll."""
    store, clock = store_and_clock
    first = await store.claim("k", "fp")
    assert isinstance(first, Claim)
    await answer(store, first, '{"n":1}')
    store.wait_seconds = 0  # any wait would be a 409
    start = clock.now
    assert await store.claim("k", "fp") == StoredAnswer(201, '{"n":1}')
    assert clock.now == start


async def test_a_waiting_duplicate_polls_with_reads_not_writes(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A duplicate waiting on a live claim only reads the key after its first try: a write
    per poll would queue behind every trade's commit (SQLite has one writer) for nothing."""
    store, _ = store_and_clock
    store.wait_seconds = 5  # the fake sleep lets a second pass per poll: five polls
    assert isinstance(await store.claim("k", "fp"), Claim)
    store._local.clear()  # the original runs in another process
    writes: list[float] = []
    store.db.observe_write = writes.append
    with pytest.raises(ConflictError):
        await store.claim("k", "fp")
    assert len(writes) == 1


async def test_polls_back_off_from_5_ms_doubling_up_to_100_ms(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A duplicate polls soon after it starts (an original answers in milliseconds), then
    less and less often, but never more than 100 ms apart."""
    polling, clock = store_and_clock
    pauses: list[float] = []

    async def sleep(pause: float) -> None:
        pauses.append(pause)
        clock.now += timedelta(seconds=1)

    store = IdempotencyStore(
        polling.db, ttl=polling.ttl, lock_seconds=60, wait_seconds=8, now=clock, sleep=sleep
    )
    assert isinstance(await store.claim("k", "fp"), Claim)
    store._local.clear()  # the original runs in another process
    with pytest.raises(ConflictError):
        await store.claim("k", "fp")
    assert pauses == [0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.1, 0.1]


async def test_taking_over_an_expired_key_leaves_a_fresh_claim(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A key past its TTL taken over by a new request keeps nothing of the old answer and
    is in flight like any new claim: a duplicate waits for it, neither replaying the old
    answer nor taking the key over a second time."""
    store, clock = store_and_clock
    old = await store.claim("k", "fp")
    assert isinstance(old, Claim)
    await answer(store, old, '{"n":1}')
    clock.now += timedelta(hours=24)
    new = await store.claim("k", "other")
    assert isinstance(new, Claim)
    query = select(idempotency_keys).where(idempotency_keys.c.key == "k")
    row = await store.db.read(lambda conn: conn.execute(query).one())
    assert (row.owner, row.fingerprint, row.created_at, row.locked_at) == (
        new.owner,
        "other",
        clock.now,
        clock.now,
    )
    assert (row.status_code, row.response, row.order_id) == (None, None, None)
    store.wait_seconds = 0  # in flight: the duplicate's 409 comes at once
    with pytest.raises(ConflictError):
        await store.claim("k", "other")


async def test_releasing_an_answered_claim_keeps_its_answer(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A release after the answer was stored (the request failing after its commit) leaves
    the answer: a retry replays it rather than trading a second time."""
    store, _ = store_and_clock
    claim = await store.claim("k", "fp")
    assert isinstance(claim, Claim)
    await answer(store, claim, '{"n":1}')
    await store.release(claim)
    assert await store.claim("k", "fp") == StoredAnswer(201, '{"n":1}')


async def test_a_stalled_request_and_the_retry_that_took_its_key_both_finish(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A request stalled past its lease and the retry that took its key over can run in
    one process: each may finish (waking the key's waiters), neither fails for the other,
    and no wake-up is left behind."""
    store, clock = store_and_clock
    stalled = await store.claim("k", "fp")
    assert isinstance(stalled, Claim)
    clock.now += timedelta(seconds=60)  # a whole lease without a renewal
    retry = await store.claim("k", "fp")
    assert isinstance(retry, Claim)
    assert retry.owner != stalled.owner
    store.finished(stalled)
    store.finished(retry)
    assert store._local == {}


class Ticks:
    """A sleep that reports each pause asked for and ends only when ticked."""

    def __init__(self) -> None:
        self.asked: asyncio.Queue[float] = asyncio.Queue()
        self._ticks: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, pause: float) -> None:
        self.asked.put_nowait(pause)
        await self._ticks.get()

    def tick(self) -> None:
        self._ticks.put_nowait(None)

    async def next_pause(self) -> float:
        """The pause of the next sleep begun (bounded: a sleep that never comes fails)."""
        return await asyncio.wait_for(self.asked.get(), 10)


async def test_the_owner_renews_its_lease_every_third_of_it(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A renewal every third of `lock_seconds` leaves room for two missed renewals (a busy
    database) before a live request's key could be taken over."""
    waiter, clock = store_and_clock
    ticks = Ticks()
    owner = IdempotencyStore(
        waiter.db, ttl=waiter.ttl, lock_seconds=60, wait_seconds=5, now=clock, sleep=ticks
    )
    claim = await owner.claim("k", "fp")
    assert isinstance(claim, Claim)
    async with owner.held(claim):
        assert await ticks.next_pause() == 20
        ticks.tick()
        assert await ticks.next_pause() == 20


async def test_a_stalled_request_renews_only_its_own_claim(
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """A request that stalled past its lease lost its key; its renewal, still running,
    leaves the new owner's lease alone (else, were the new owner to die, the key would
    stay stuck for as long as the stalled request runs)."""
    waiter, clock = store_and_clock
    ticks = Ticks()
    owner = IdempotencyStore(
        waiter.db, ttl=waiter.ttl, lock_seconds=60, wait_seconds=5, now=clock, sleep=ticks
    )
    stalled = await owner.claim("k", "fp")
    assert isinstance(stalled, Claim)
    query = select(idempotency_keys.c.locked_at).where(idempotency_keys.c.key == "k")
    async with owner.held(stalled):
        await ticks.next_pause()
        clock.now += timedelta(seconds=60)  # a whole lease without a renewal
        taken = await waiter.claim("k", "fp")
        assert isinstance(taken, Claim)
        taken_at = clock.now
        clock.now += timedelta(seconds=10)
        ticks.tick()  # the stalled request's renewal runs at last
        await ticks.next_pause()  # and is done: it sleeps again
        assert await waiter.db.read(lambda conn: conn.execute(query).scalar_one()) == taken_at


class Interleaved:
    """A connection that runs a pending action (once) just before its first statement of
    `kind`, on the same transaction: another request committing in between."""

    def __init__(
        self, conn: Connection, kind: type, pending: list[Callable[[Connection], object]]
    ) -> None:
        self.conn, self.kind, self.pending = conn, kind, pending

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    def execute(self, statement: Any, *args: Any) -> Any:
        if self.pending and isinstance(statement, self.kind):
            self.pending.pop()(self.conn)
        return self.conn.execute(statement, *args)


def meanwhile(
    monkeypatch: pytest.MonkeyPatch,
    store: IdempotencyStore,
    kind: type,
    action: Callable[[Connection], object],
) -> None:
    """Run `action` in the store's next claim, just before its first `kind` statement
    (Select, Update): another request's transaction committing between two statements of
    the claim's, which PostgreSQL's READ COMMITTED allows (and SQLite's one writer not)."""
    pending = [action]
    write = store.db.write

    async def interleaved(body: Callable[[Connection], Any]) -> Any:
        return await write(lambda conn: body(cast(Connection, Interleaved(conn, kind, pending))))

    monkeypatch.setattr(store.db, "write", interleaved)


async def test_a_claim_released_meanwhile_is_claimed_afresh(
    store_and_clock: tuple[IdempotencyStore, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim released between a retry's insert (which it blocked) and the retry's read of
    the row leaves nothing to judge: the retry looks again and claims the free key."""
    store, _ = store_and_clock
    first = await store.claim("k", "fp")
    assert isinstance(first, Claim)
    store._local.clear()  # the original runs in another process
    release = delete(idempotency_keys).where(idempotency_keys.c.owner == first.owner)
    meanwhile(monkeypatch, store, Select, lambda conn: conn.execute(release))
    second = await store.claim("k", "fp")
    assert isinstance(second, Claim)
    assert second.owner != first.owner


async def test_a_claim_answered_meanwhile_is_not_taken_over(
    store_and_clock: tuple[IdempotencyStore, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An original that stores its answer just as its lease lapsed, between a retry's read
    of the key and its take-over, keeps the key: the retry replays the answer instead of
    trading a second time."""
    store, clock = store_and_clock
    first = await store.claim("k", "fp")
    assert isinstance(first, Claim)
    store._local.clear()  # the original runs in another process
    clock.now += timedelta(seconds=60)  # a whole lease without a renewal
    store_answer = functools.partial(
        answer_in, claim=first, status_code=201, body='{"n":1}', order_id="order-1"
    )
    meanwhile(monkeypatch, store, Update, store_answer)
    assert await store.claim("k", "fp") == StoredAnswer(201, '{"n":1}')


async def test_of_two_retries_taking_over_one_claim_only_one_gets_it(
    store_and_clock: tuple[IdempotencyStore, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two retries judging one abandoned claim at once: the take-over landing second finds
    another owner and waits for that one, so only one request runs."""
    store, clock = store_and_clock
    store.wait_seconds = 5  # the fake sleep lets a second pass per poll
    dead = await store.claim("k", "fp")
    assert isinstance(dead, Claim)
    store._local.clear()  # the claiming request died with its process
    clock.now += timedelta(seconds=60)  # a whole lease without a renewal
    rival = (
        update(idempotency_keys)
        .where(idempotency_keys.c.key == "k")
        .values(owner="rival", locked_at=clock.now)
    )
    meanwhile(monkeypatch, store, Update, lambda conn: conn.execute(rival))
    with pytest.raises(ConflictError):
        await store.claim("k", "fp")  # the rival's claim is live: wait, then 409
    query = select(idempotency_keys.c.owner).where(idempotency_keys.c.key == "k")
    assert await store.db.read(lambda conn: conn.execute(query).scalar_one()) == "rival"
