"""A real Redis, started by the test, killed mid-test and restarted on the same port."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest
from market_data_gateway.app import create_app
from redis.asyncio import Redis

from tests.support.fake_coinbase import FakeCoinbase
from tests.support.metrics import parse_metrics
from tests.support.servers import ThreadServer, free_port, wait_until
from tests.unit.market_data_gateway.conftest import running, settings_for
from tests.unit.shared.fakes import FakeClock

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisProcess:
    """`redis-server` on a spare port, no persistence; start, kill and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _accepts(self.port), what=f"redis-server on {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        wait_until(lambda: not _accepts(self.port), what="redis-server gone")


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


async def stored_keys(url: str) -> list[bytes]:
    redis = Redis.from_url(url)
    try:
        return [key async for key in redis.scan_iter(match="mdg:*")]
    finally:
        await redis.aclose()


async def test_redis_killed_and_restarted(
    redis_server: RedisProcess, coinbase: ThreadServer, fake: FakeCoinbase, clock: FakeClock
) -> None:
    """Redis dies: every request still 200 and /health degraded; it returns: cached, healthy."""
    settings = settings_for(coinbase.url, redis_url=redis_server.url)
    replica = create_app(settings, clock=clock)
    other = create_app(settings, clock=clock)
    async with running(replica) as client, running(other) as other_client:
        assert (await client.get("/api/v1/ohlcv/BTC-USD")).status_code == 200
        assert len(await stored_keys(redis_server.url)) == 1
        assert (await client.get("/health")).json()["status"] == "healthy"

        redis_server.kill()
        symbols = ["ETH-USD", "SOL-USD", "DOGE-USD", "ETH-BTC"]
        for symbol in symbols * 3:
            for path in (f"/api/v1/price/{symbol}", f"/api/v1/ohlcv/{symbol}"):
                assert (await client.get(path)).status_code == 200
        health = (await client.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["dependencies"]["cache"] == "degraded"
        assert health["details"]["cache"]["serving"] == "uncached"
        # The in-process layer still spares Coinbase: one candle request per symbol.
        assert fake.count("/candles") == 1 + len(symbols)

        redis_server.start()  # same port, empty
        assert (await client.get("/health")).json()["status"] == "healthy"
        before = fake.count("/candles")
        assert (await client.get("/api/v1/ohlcv/SOL-USD", params={"periods": 7})).status_code == 200
        assert len(await stored_keys(redis_server.url)) == 1
        # Cached again: another replica is answered from Redis without asking Coinbase.
        shared = await other_client.get("/api/v1/ohlcv/SOL-USD", params={"periods": 7})
        assert shared.status_code == 200
        assert fake.count("/candles") == before + 1
        counted = parse_metrics((await other_client.get("/metrics")).text)
        assert counted.total("gateway_cache_requests_total", kind="ohlcv", result="hit") == 1


async def test_redis_down_at_start_up_then_up(
    coinbase: ThreadServer, fake: FakeCoinbase, clock: FakeClock
) -> None:
    """A gateway started while Redis is down serves and says degraded; Redis up → healthy.

    /metrics counts the lookup Redis failed as an error, the in-process hits as hits."""
    server = RedisProcess()
    settings = settings_for(coinbase.url, redis_url=server.url)
    async with running(create_app(settings, clock=clock)) as client:
        answers = [await client.get("/api/v1/price/BTC-USD") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert (await client.get("/health")).json()["status"] == "degraded"
        counted = parse_metrics((await client.get("/metrics")).text)
        assert counted.total("gateway_cache_requests_total", kind="price", result="error") == 1
        assert counted.total("gateway_cache_requests_total", kind="price", result="hit") == 2
        server.start()
        try:
            assert (await client.get("/health")).json()["status"] == "healthy"
            clock.advance(1)  # next price bucket
            assert (await client.get("/api/v1/price/BTC-USD")).status_code == 200
            assert len(await stored_keys(server.url)) == 1
            counted = parse_metrics((await client.get("/metrics")).text)
            assert counted.total("gateway_cache_requests_total", kind="price", result="miss") == 1
        finally:
            server.kill()
