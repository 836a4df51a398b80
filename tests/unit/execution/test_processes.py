"""Execution as real uvicorn processes: durability across SIGKILL, and several processes
sharing one ledger without overdrawing it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import keys
from tests.support.servers import (
    ServiceProcess,
    ThreadServer,
    free_port,
    serve_in_thread,
    wait_until,
)
from tests.unit.execution.stubs import GatewayStub, RiskStub
from tests.unit.execution.test_concurrency import ledger_totals

ProcessFactory = Callable[[], ServiceProcess]


def factory(
    database_url: str,
    tmp_path: Path,
    risk_server: tuple[RiskStub, ThreadServer],
    gateway_server: tuple[GatewayStub, ThreadServer],
) -> ProcessFactory:
    env = {
        "DATABASE_URL": database_url,
        "RISK_URL": risk_server[1].url,
        "MARKET_DATA_URL": gateway_server[1].url,
        "MARKET_DATA_SOURCE": "simulated",
        "STARTING_CASH": "10000",
        "FEE_BPS": "10",
        "LOG_LEVEL": "WARNING",
    }

    def make() -> ServiceProcess:
        port = free_port()
        return ServiceProcess("execution", port, env, tmp_path / f"execution-{port}.log")

    return make


@asynccontextmanager
async def started(*processes: ServiceProcess) -> AsyncIterator[list[ServiceProcess]]:
    """Start the processes at once (they race to migrate the ledger) and stop them after."""
    try:
        await asyncio.gather(*(asyncio.to_thread(p.start) for p in processes))
        yield list(processes)
    finally:
        for process in processes:
            process.stop()


async def test_a_201_order_survives_sigkill(
    database_url: str,
    tmp_path: Path,
    risk: RiskStub,
    risk_server: tuple[RiskStub, ThreadServer],
    gateway_server: tuple[GatewayStub, ThreadServer],
) -> None:
    """An order answered 201 is on the ledger after the process is SIGKILLed and restarted."""
    make = factory(database_url, tmp_path, risk_server, gateway_server)
    process = make()
    async with (
        started(process),
        httpx.AsyncClient(headers=keys.headers(), base_url=process.url) as client,
    ):
        body = {"symbol": "BTC-USD", "side": "buy", "amount": 1234.5}
        order = (await client.post("/api/v1/trade", json=body)).json()
        process.kill()
    assert order["status"] == "FILLED"
    process = make()
    async with (
        started(process),
        httpx.AsyncClient(headers=keys.headers(), base_url=process.url) as client,
    ):
        again = await client.get(f"/api/v1/orders/{order['order_id']}")
        portfolio = (await client.get("/api/v1/portfolio")).json()
    assert again.json() == order | {"account": 1}
    assert portfolio["cash"] == 10_000 - 1234.5 - order["fee"]


async def test_the_trading_state_survives_sigkill(
    database_url: str,
    tmp_path: Path,
    risk: RiskStub,
    risk_server: tuple[RiskStub, ThreadServer],
    gateway_server: tuple[GatewayStub, ThreadServer],
) -> None:
    """HALTED and its history are still in force after a SIGKILL and a restart."""
    make = factory(database_url, tmp_path, risk_server, gateway_server)
    process = make()
    async with (
        started(process),
        httpx.AsyncClient(headers=keys.headers(), base_url=process.url) as client,
    ):
        change = {"state": "HALTED", "reason": "before the crash"}
        set_to = (await client.put("/api/v1/trading-state", json=change)).json()
        process.kill()
    process = make()
    async with (
        started(process),
        httpx.AsyncClient(headers=keys.headers(), base_url=process.url) as client,
    ):
        state = (await client.get("/api/v1/trading-state")).json()
        history = (await client.get("/api/v1/trading-state/history")).json()["changes"]
        body = {"symbol": "BTC-USD", "side": "buy", "amount": 100}
        refused = await client.post("/api/v1/trade", json=body)
    assert state == set_to
    assert history == [set_to]
    assert refused.status_code == 409


async def test_two_processes_on_one_ledger_never_overdraw(
    database_url: str,
    tmp_path: Path,
    risk: RiskStub,
    risk_server: tuple[RiskStub, ThreadServer],
    gateway_server: tuple[GatewayStub, ThreadServer],
) -> None:
    """100 concurrent buys over two processes sharing the ledger: cash >= 0, fills within it."""
    make = factory(database_url, tmp_path, risk_server, gateway_server)
    async with (
        started(make(), make()) as processes,
        httpx.AsyncClient(headers=keys.headers(), timeout=30) as client,
    ):
        body = {"symbol": "BTC-USD", "side": "buy", "amount": 150}
        responses = await asyncio.gather(
            *(client.post(f"{processes[i % 2].url}/api/v1/trade", json=body) for i in range(100))
        )
    assert {r.status_code for r in responses} == {201}
    assert "REJECTED" in {r.json()["status"] for r in responses}
    cash, filled, fees, count = await ledger_totals(database_url)
    assert cash >= 0
    assert filled + fees <= 10_000
    assert cash == 10_000 - filled - fees
    assert count == sum(r.json()["status"] == "FILLED" for r in responses)


async def test_a_retry_after_a_crash_mid_request_is_answered_with_one_fill(
    database_url: str,
    tmp_path: Path,
    gateway_server: tuple[GatewayStub, ThreadServer],
) -> None:
    """A process SIGKILLed while its keyed trade waits on Risk: a retry with the key on
    another process is answered (the dead claim taken over within one lease, far inside
    IDEMPOTENCY_WAIT_SECONDS, where a 60 s lock would answer 409), with exactly one fill."""
    held = threading.Event()  # set once the first request reached Risk
    release = threading.Event()
    stub = RiskStub()
    app = stub.app()

    @app.middleware("http")
    async def hold_the_first(request: Any, call_next: Any) -> Any:
        if not held.is_set():
            held.set()
            await asyncio.to_thread(release.wait)  # its caller is killed meanwhile
        return await call_next(request)

    with serve_in_thread(app) as risk_server:
        make = factory(database_url, tmp_path, (stub, risk_server), gateway_server)
        first, second = make(), make()
        for process in (first, second):
            process.env["IDEMPOTENCY_WAIT_SECONDS"] = "10"
        headers = {"Idempotency-Key": "crash-1"}
        body = {"symbol": "BTC-USD", "side": "buy", "amount": 100}
        async with (
            started(first, second),
            httpx.AsyncClient(headers=keys.headers(), timeout=30) as client,
        ):
            doomed = asyncio.create_task(
                client.post(f"{first.url}/api/v1/trade", json=body, headers=headers)
            )
            await asyncio.to_thread(wait_until, held.is_set, what="the first trade at Risk")
            first.kill()
            with pytest.raises(httpx.TransportError):
                await doomed
            retry = await client.post(f"{second.url}/api/v1/trade", json=body, headers=headers)
            release.set()
    assert retry.status_code == 201, retry.text
    assert retry.json()["status"] == "FILLED"
    _, _, _, count = await ledger_totals(database_url)
    assert count == 1
