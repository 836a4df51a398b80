"""Idempotency-Key with Stripe's semantics, through the API and at the store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from execution.config import Settings
from execution.db import open_database
from execution.idempotency import Claim, IdempotencyStore, StoredAnswer, answer_in
from execution.migrate import migrate
from execution.models import idempotency_keys, orders
from sqlalchemy import func, select

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
    """A later retry with the key gets the same body, even after the books changed."""
    first = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-1"})
    await client.post("/api/v1/trade", json=BODY)
    again = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-1"})
    assert (again.status_code, again.content) == (201, first.content)
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
    assert [(e.field, e.location) for e in problem.errors] == [("Idempotency-Key", "header")]
    assert "different request" in problem.detail


async def test_503_is_not_stored_so_a_retry_trades(
    start: StartApp, risk: RiskStub, dead_url: str
) -> None:
    """After Risk was down, a retry with the same key runs afresh and fills."""
    async with start(risk_url=dead_url) as client:
        down = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-3"})
    assert down.status_code == 503
    async with start() as client:
        retry = await client.post("/api/v1/trade", json=BODY, headers={"Idempotency-Key": "k-3"})
        assert (retry.status_code, retry.json()["status"]) == (201, "FILLED")
        assert len((await client.get("/api/v1/orders")).json()["orders"]) == 2


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
    with pytest.raises(ConflictError):
        await answer(store, dead, "{}")  # the dead owner's late write is refused


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
    store_and_clock: tuple[IdempotencyStore, Clock],
) -> None:
    """While the original runs in this process a duplicate waits for its wake-up, which
    comes with the answer: its polls never need to sleep."""
    polling, clock = store_and_clock

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
    """The periodic purge removes keys past the TTL and keeps younger ones."""
    store, clock = store_and_clock
    await answer(store, await store.claim("old", "fp"), "{}")  # type: ignore[arg-type]
    clock.now += timedelta(hours=12)
    await answer(store, await store.claim("young", "fp"), "{}")  # type: ignore[arg-type]
    clock.now += timedelta(hours=12, seconds=1)
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
    store, _ = store_and_clock
    store.wait_seconds = 5  # the fake sleep lets a second pass per poll
    assert isinstance(await store.claim("k", "fp"), Claim)
    store._local.clear()  # the original runs in another process
    with pytest.raises(ConflictError):
        await store.claim("k", "fp")


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
