"""The trading state (kill switch): persisted on the ledger, enforced before Risk and at fill."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from execution.db import engine_url
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.auth import Role
from tests.support import keys
from tests.unit.execution.conftest import StartApp
from tests.unit.execution.stubs import RiskStub, approve_all

PROBLEM = "application/problem+json"
HALT = "UPDATE accounts SET trading_state = 'HALTED', trading_reason = 'race'"


async def _halt(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30) as conn:
            conn.execute(HALT)
        return
    engine = create_async_engine(engine_url(database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(HALT))
    finally:
        await engine.dispose()


async def trade(client: httpx.AsyncClient, side: str, amount: float) -> httpx.Response:
    body = {"symbol": "BTC-USD", "side": side, "amount": amount}
    return await client.post("/api/v1/trade", json=body)


async def put_state(client: httpx.AsyncClient, state: str, reason: str) -> httpx.Response:
    return await client.put("/api/v1/trading-state", json={"state": state, "reason": reason})


async def test_a_fresh_ledger_is_active(client: httpx.AsyncClient) -> None:
    """A new ledger trades: ACTIVE, set by the system, with no change in its history."""
    state = (await client.get("/api/v1/trading-state")).json()
    assert state["state"] == "ACTIVE"
    assert state["changed_by"] == "system"
    assert state["changed_at"].endswith("Z")
    assert (await client.get("/api/v1/trading-state/history")).json() == {"changes": []}


async def test_halted_refuses_with_409_recorded_and_risk_not_asked(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """HALTED: a trade is a 409 problem naming state and reason, kept as a REJECTED order."""
    assert (await put_state(client, "HALTED", "exchange incident")).status_code == 200
    answer = await trade(client, "buy", 100)
    assert answer.status_code == 409
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["trading_state"] == "HALTED"
    assert problem["state_reason"] == "exchange incident"
    assert "HALTED" in problem["detail"]
    assert "exchange incident" in problem["detail"]
    assert risk.requests == []
    orders = (await client.get("/api/v1/orders")).json()["orders"]
    assert [(o["order_id"], o["status"]) for o in orders] == [(problem["order_id"], "REJECTED")]
    assert "HALTED" in orders[0]["reason"]
    assert "exchange incident" in orders[0]["reason"]  # the order says why, as the 409 does
    assert (await trade(client, "sell", 100)).status_code == 409


async def test_reducing_refuses_buys_and_lets_sells_through(
    client: httpx.AsyncClient, risk: RiskStub
) -> None:
    """REDUCING: a buy is a 409; a sell of what is held fills."""
    assert (await trade(client, "buy", 1000)).json()["status"] == "FILLED"
    await put_state(client, "REDUCING", "winding down")
    refused = await trade(client, "buy", 100)
    assert refused.status_code == 409
    assert refused.json()["trading_state"] == "REDUCING"
    sold = await trade(client, "sell", 400)
    assert sold.status_code == 201
    assert sold.json()["status"] == "FILLED"


async def test_resuming_is_an_explicit_put(client: httpx.AsyncClient) -> None:
    """After HALTED, trades are refused until a PUT sets ACTIVE; then they fill again."""
    await put_state(client, "HALTED", "stop")
    assert (await trade(client, "buy", 100)).status_code == 409
    resumed = await put_state(client, "ACTIVE", "incident over")
    assert resumed.json()["state"] == "ACTIVE"
    assert (await trade(client, "buy", 100)).json()["status"] == "FILLED"


async def test_history_lists_every_change_newest_first(client: httpx.AsyncClient) -> None:
    """The history has who, when and why of each change, newest first; `limit` bounds it."""
    for state, reason in [("HALTED", "one"), ("REDUCING", "two"), ("ACTIVE", "three")]:
        await put_state(client, state, reason)
    changes = (await client.get("/api/v1/trading-state/history")).json()["changes"]
    assert [(c["state"], c["reason"]) for c in changes] == [
        ("ACTIVE", "three"),
        ("REDUCING", "two"),
        ("HALTED", "one"),
    ]
    # The admin key that made the change, by role and id (never the key).
    assert {c["changed_by"] for c in changes} == {f"admin:{keys.key_id(Role.ADMIN)}"}
    assert changes[0]["changed_at"] >= changes[1]["changed_at"] >= changes[2]["changed_at"]
    limited = await client.get("/api/v1/trading-state/history", params={"limit": 1})
    assert len(limited.json()["changes"]) == 1
    current = (await client.get("/api/v1/trading-state")).json()
    assert current == changes[0]


@pytest.mark.parametrize(
    "body",
    [
        {"state": "PAUSED", "reason": "x"},
        {"state": "HALTED"},
        {"state": "HALTED", "reason": ""},
        {"state": "HALTED", "reason": "x", "extra": 1},
    ],
)
async def test_bad_state_change_is_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """An unknown state, a missing or empty reason, or an unknown field is a 422 problem."""
    answer = await client.put("/api/v1/trading-state", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert (await client.get("/api/v1/trading-state")).json()["state"] == "ACTIVE"


async def test_the_state_survives_a_restart(start: StartApp, risk: RiskStub) -> None:
    """A new process on the same ledger boots into the state last set, with its history."""
    async with start() as client:
        await put_state(client, "HALTED", "before the restart")
    async with start() as client:
        state = (await client.get("/api/v1/trading-state")).json()
        assert (state["state"], state["reason"]) == ("HALTED", "before the restart")
        assert (await trade(client, "buy", 100)).status_code == 409


async def test_a_halt_set_while_risk_decides_holds_at_fill(
    start: StartApp, risk: RiskStub, database_url: str
) -> None:
    """A halt that lands between Risk's approval and the fill refuses the fill (409), naming
    the order it recorded, whose reason gives the halt's."""

    def halt_then_approve(body: dict[str, Any]) -> dict[str, Any]:
        # Another writer (an operator on another replica) halts while Risk decides.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _halt(database_url)).result()
        return approve_all(body)

    risk.rule = halt_then_approve
    async with start() as client:
        answer = await trade(client, "buy", 100)
        assert answer.status_code == 409
        assert answer.json()["state_reason"] == "race"
        portfolio = (await client.get("/api/v1/portfolio")).json()
        orders = (await client.get("/api/v1/orders")).json()["orders"]
    assert portfolio["cash"] == 10_000
    assert [(o["order_id"], o["status"]) for o in orders] == [
        (answer.json()["order_id"], "REJECTED")
    ]
    assert "race" in orders[0]["reason"]


async def test_a_trade_refused_at_the_fill_runs_afresh_after_resuming(
    start: StartApp, risk: RiskStub, database_url: str
) -> None:
    """A 409 at the fill is not stored under the Idempotency-Key: once trading resumes, a
    retry with the key trades instead of replaying the refusal."""

    def halt_then_approve(body: dict[str, Any]) -> dict[str, Any]:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _halt(database_url)).result()
        return approve_all(body)

    risk.rule = halt_then_approve
    body = {"symbol": "BTC-USD", "side": "buy", "amount": 100}
    key = {"Idempotency-Key": "k-halted"}
    async with start() as client:
        assert (await client.post("/api/v1/trade", json=body, headers=key)).status_code == 409
        risk.rule = approve_all
        await put_state(client, "ACTIVE", "race over")
        retry = await client.post("/api/v1/trade", json=body, headers=key)
    assert (retry.status_code, retry.json()["status"]) == (201, "FILLED")
    assert "Idempotent-Replayed" not in retry.headers
