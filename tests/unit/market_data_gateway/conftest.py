"""A gateway in-process (lifespan run by hand) over the fake Coinbase in a uvicorn thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from market_data_gateway.app import create_app
from market_data_gateway.config import Settings

from tests.support.asgi import asgi_client
from tests.support.fake_coinbase import FakeCoinbase
from tests.support.servers import ThreadServer, serve_in_thread
from tests.unit.shared.fakes import FakeClock

# 30.5 s into the minute that opened at 1_699_999_980 (2023-11-14T22:13:00Z).
START = 1_700_000_010.5
FORMING = 1_699_999_980


class Sleeps:
    """An injected sleep that records what it was asked to wait, and waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fake(clock: FakeClock) -> FakeCoinbase:
    return FakeCoinbase(seed=5, clock=clock)


@pytest.fixture
def coinbase(fake: FakeCoinbase) -> Iterator[ThreadServer]:
    with serve_in_thread(fake.app) as server:
        yield server


def settings_for(coinbase_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "market_data_source": "coinbase",
        "coinbase_api_url": coinbase_url,
        "redis_url": None,
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and talk to it in-process."""
    async with asgi_client(app, "http://gateway") as client:
        yield client


@pytest.fixture
async def gateway(
    coinbase: ThreadServer, clock: FakeClock, sleeps: Sleeps
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on Coinbase (the fake), with the in-process cache."""
    app = create_app(settings_for(coinbase.url), clock=clock, sleep=sleeps)
    async with running(app) as client:
        yield client
