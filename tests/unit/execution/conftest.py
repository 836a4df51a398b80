"""Fixtures for Execution: a ledger on SQLite or PostgreSQL, stub upstreams, the app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from execution.app import create_app
from execution.config import Settings
from execution.db import engine_url
from fastapi import FastAPI
from regime_detection.schemas import RegimeResponse
from risk_management.app import create_app as create_risk
from risk_management.config import Settings as RiskSettings
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from shared.market.source import MarketSource
from tests.support.asgi import asgi_client
from tests.support.servers import ThreadServer, free_port, serve_in_thread
from tests.unit.execution.stubs import FakeSource, GatewayStub, RiskStub

# What the gateway stub quotes for the tests that run the real Risk service (`priced`).
PRICES = {"DOGE-USD": 0.15, "ADA-USD": 0.5, "SOL-USD": 150.0, "ETH-USD": 3000.0}
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_ADMIN = f"{PG_SERVER}/test"


@asynccontextmanager
async def _admin() -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(
        engine_url(PG_ADMIN), isolation_level="AUTOCOMMIT", connect_args={"timeout": 2}
    )
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A DATABASE_URL of an empty ledger: a temp SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    name = f"execution_test_{uuid.uuid4().hex[:12]}"
    try:
        async with _admin() as admin:
            await admin.execute(text(f'CREATE DATABASE "{name}"'))
    except (OSError, DBAPIError) as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not usable: {exc}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        async with _admin() as admin:
            await admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test runs once per ledger backend, in its own fresh database."""
    async with fresh_database(cast(str, request.param), tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def risk_server() -> Iterator[tuple[RiskStub, ThreadServer]]:
    stub = RiskStub()
    with serve_in_thread(stub.app()) as server:
        yield stub, server


@pytest.fixture(scope="session")
def gateway_server() -> Iterator[tuple[GatewayStub, ThreadServer]]:
    stub = GatewayStub()
    with serve_in_thread(stub.app()) as server:
        yield stub, server


@pytest.fixture
def risk(risk_server: tuple[RiskStub, ThreadServer]) -> Iterator[RiskStub]:
    """The Risk stub, approving everything at PRICE unless a test says otherwise.

    Fails the test if the stub was asked or answered something off Risk's OpenAPI schema.
    """
    stub, _ = risk_server
    stub.reset()
    yield stub
    violations = list(stub.violations)
    stub.reset()
    assert not violations, "\n".join(violations)


@pytest.fixture
def gateway(gateway_server: tuple[GatewayStub, ThreadServer]) -> Iterator[GatewayStub]:
    """The gateway stub; fails the test if it answered off the gateway's OpenAPI schema."""
    stub, _ = gateway_server
    stub.reset()
    yield stub
    violations = list(stub.violations)
    stub.reset()
    assert not violations, "\n".join(violations)


@pytest.fixture
def settings_for(
    risk_server: tuple[RiskStub, ThreadServer],
    gateway_server: tuple[GatewayStub, ThreadServer],
    database_url: str,
) -> Callable[..., Settings]:
    """Settings pointing at the stubs and this test's database; keywords override."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "risk_url": risk_server[1].url,
            "market_data_url": gateway_server[1].url,
            "market_data_source": "simulated",
            "starting_cash": 10_000,
            "slippage_bps": 0,
            "fee_bps": 0,
            "log_level": "WARNING",
            # A point after every fill, so tests see each one (test_history tests the spacing).
            "portfolio_fill_point_seconds": 0,
            **overrides,
        }
        return Settings(**values)

    return build


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an in-process HTTP client."""
    async with asgi_client(app, "http://execution") as client:
        yield client


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


StartApp = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def start(settings_for: Callable[..., Settings], source: FakeSource) -> StartApp:
    """`async with start(**settings) as client`: the app on this test's ledger."""

    def make(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        app = create_app(settings_for(**overrides), market_source=cast(MarketSource, source))
        return running(app)

    return make


@pytest.fixture
async def client(start: StartApp, risk: RiskStub) -> AsyncIterator[httpx.AsyncClient]:
    """The app with default settings (no fee, no slippage, 10 000 cash), Risk approving all."""
    async with start() as running_client:
        yield running_client


@pytest.fixture
def dead_url() -> str:
    """A URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


def regime_stub() -> FastAPI:
    """The regime service's contract: TRENDING for every symbol (checked by its schema)."""
    app = FastAPI()
    extra = cast(dict[str, Any], RegimeResponse.model_config["json_schema_extra"])
    example: dict[str, Any] = extra["examples"][0]

    @app.get("/api/v1/regime/{symbol}")
    async def regime(symbol: str) -> dict[str, Any]:
        return RegimeResponse.model_validate({**example, "symbol": symbol}).model_dump(mode="json")

    return app


@pytest.fixture(scope="module")
def real_risk(gateway_server: tuple[GatewayStub, ThreadServer]) -> Iterator[ThreadServer]:
    """The real Risk service, reading prices from the gateway stub, TRENDING regimes."""
    with serve_in_thread(regime_stub()) as regime:
        settings = RiskSettings(
            market_data_url=gateway_server[1].url,
            regime_url=regime.url,
            market_data_source="simulated",
            log_level="WARNING",
        )
        with serve_in_thread(create_risk(settings)) as risk:
            yield risk


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
def priced(gateway: GatewayStub) -> GatewayStub:
    now = datetime.now(UTC)
    gateway.prices.update({s: (p, now) for s, p in PRICES.items()})
    return gateway
