"""One composed stack per test session: four uvicorn processes, Redis, a fake Coinbase.

Set `STACK_EXECUTION_URL` (and `STACK_MARKET_DATA_URL`, `STACK_REGIME_URL`,
`STACK_RISK_URL`) to run the flow tests against a stack that is already running, e.g.
one started by `docker compose up`; the failure tests need to stop processes and skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.stack import RedisServer, Stack
from tests.support.fake_coinbase import FakeCoinbase
from tests.support.otlp_collector import OtlpCollector
from tests.support.servers import serve_in_thread

EXTERNAL = {
    "market-data": os.environ.get("STACK_MARKET_DATA_URL"),
    "regime-detection": os.environ.get("STACK_REGIME_URL"),
    "risk-management": os.environ.get("STACK_RISK_URL"),
    "execution": os.environ.get("STACK_EXECUTION_URL"),
}

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="integration tests need redis-server"
)


@pytest.fixture(scope="session")
def fake_coinbase() -> Iterator[FakeCoinbase]:
    fake = FakeCoinbase()
    with serve_in_thread(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(scope="session")
def otlp_collector() -> Iterator[OtlpCollector]:
    collector = OtlpCollector()
    with serve_in_thread(collector.app) as server:
        collector.url = server.url
        yield collector


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    fake_coinbase: FakeCoinbase,
    otlp_collector: OtlpCollector,
) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("stack")
    redis = RedisServer(workdir)
    redis.start()
    stack = Stack(
        workdir=workdir,
        coinbase_url=fake_coinbase.url,
        redis=redis,
        # Quick recovery so the breaker tests need no long waits.
        # Spans exported to the test collector, sent within 0.2 s of ending.
        extra_env={
            "BREAKER_RECOVERY_SECONDS": "1",
            "LOG_LEVEL": "INFO",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()
        redis.stop()


@pytest.fixture(scope="session")
def urls(request: pytest.FixtureRequest) -> dict[str, str]:
    """Base URL of each service: the external stack's when given, else the test stack's."""
    if all(EXTERNAL.values()):
        return {name: str(url).rstrip("/") for name, url in EXTERNAL.items()}
    stack: Stack = request.getfixturevalue("stack")
    return {name: stack.url(name) for name in EXTERNAL}


@pytest.fixture
def own_stack(request: pytest.FixtureRequest) -> Stack:
    """The stack the tests started themselves (failure tests stop its processes)."""
    if all(EXTERNAL.values()):
        pytest.skip("failure tests stop processes; they run only on the test-started stack")
    stack: Stack = request.getfixturevalue("stack")
    return stack
