"""Caching and single flight, seen from outside: how many requests reach Coinbase."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from market_data_gateway.app import create_app
from redis.asyncio import Redis

from tests.support.fake_coinbase import FakeCoinbase
from tests.support.metrics import parse_metrics
from tests.support.servers import ThreadServer
from tests.unit.market_data_gateway.conftest import Sleeps, running, settings_for
from tests.unit.shared.fakes import FakeClock

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
OHLCV = "/api/v1/ohlcv/BTC-USD"


@pytest.fixture(params=["memory", "redis"])
async def cached_gateway(
    request: pytest.FixtureRequest, coinbase: ThreadServer, clock: FakeClock, sleeps: Sleeps
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with the in-process cache, or with the real Redis (own key prefix)."""
    prefix = f"test-mdg-{uuid.uuid4().hex}:"
    redis_url = LOCAL_REDIS if request.param == "redis" else None
    settings = settings_for(coinbase.url, redis_url=redis_url, redis_key_prefix=prefix)
    async with running(create_app(settings, clock=clock, sleep=sleeps)) as client:
        yield client
    if redis_url is not None:
        redis = Redis.from_url(redis_url)
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def burst(client: httpx.AsyncClient, path: str, n: int = 100) -> list[httpx.Response]:
    return await asyncio.gather(*(client.get(path, params={"periods": 60}) for _ in range(n)))


async def test_one_upstream_call_per_candle(
    cached_gateway: httpx.AsyncClient, fake: FakeCoinbase, clock: FakeClock
) -> None:
    """100 concurrent misses → 1 Coinbase request; again in the candle → 0; next candle → 1."""
    fake.latency = 0.05  # the load stays in flight while all 100 arrive
    first = await burst(cached_gateway, OHLCV)
    assert {r.status_code for r in first} == {200}
    assert len({r.content for r in first}) == 1
    assert fake.count("/candles") == 1

    clock.advance(25)  # 55.5 s into the same minute
    again = await burst(cached_gateway, OHLCV)
    assert [r.content for r in again] == [r.content for r in first]
    assert fake.count("/candles") == 1

    clock.advance(5)  # the candle closed: a new one is due
    after = await burst(cached_gateway, OHLCV)
    assert {r.status_code for r in after} == {200}
    assert fake.count("/candles") == 2
    newest = after[0].json()["data"][-1]["timestamp"]
    assert newest > first[0].json()["data"][-1]["timestamp"]
    health = (await cached_gateway.get("/health")).json()
    assert health["details"]["market_source"]["upstream_calls"] == {"candles": 2}


async def test_cache_and_source_metrics_count_each_answer(
    cached_gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """100 concurrent misses are 100 misses and one source call; 100 more are 100 hits."""
    fake.latency = 0.05
    assert {r.status_code for r in await burst(cached_gateway, OHLCV)} == {200}
    assert {r.status_code for r in await burst(cached_gateway, OHLCV)} == {200}
    counted = parse_metrics((await cached_gateway.get("/metrics")).text)
    assert counted.total("gateway_cache_requests_total", kind="ohlcv", result="miss") == 100
    assert counted.total("gateway_cache_requests_total", kind="ohlcv", result="hit") == 100
    assert counted.total("gateway_cache_requests_total", result="error") == 0
    assert counted.total("gateway_source_requests_total", source="coinbase", status="ok") == 1
    assert counted.total("gateway_source_requests_total") == 1


async def test_price_cached_for_its_ttl(
    cached_gateway: httpx.AsyncClient, fake: FakeCoinbase, clock: FakeClock
) -> None:
    """Prices are served from cache within one PRICE_TTL_SECONDS bucket, then fetched again."""
    clock.now = 1_700_000_010.0
    await asyncio.gather(*(cached_gateway.get("/api/v1/price/ETH-USD") for _ in range(50)))
    clock.advance(0.9)
    await cached_gateway.get("/api/v1/price/ETH-USD")
    assert fake.count("/ticker") == 1
    clock.advance(0.1)
    await cached_gateway.get("/api/v1/price/ETH-USD")
    assert fake.count("/ticker") == 2


async def test_a_failed_load_is_not_cached(
    cached_gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """All concurrent callers of a failing load get 503; the next request tries again."""
    fake.fail_next(500, times=1000)
    failed = await burst(cached_gateway, OHLCV, n=10)
    assert {r.status_code for r in failed} == {503}
    fake.clear_failures()
    assert (await cached_gateway.get(OHLCV)).status_code == 200


async def test_incomplete_candles_cached_briefly(
    gateway: httpx.AsyncClient, fake: FakeCoinbase, clock: FakeClock
) -> None:
    """Without the newest closed candle (late or a gap) the answer is kept only 5 s."""
    fake.gaps.add(1_699_999_920)  # the newest closed minute at START
    await gateway.get(OHLCV)
    clock.advance(4)
    await gateway.get(OHLCV)
    assert fake.count("/candles") == 1
    clock.advance(1.5)
    await gateway.get(OHLCV)
    assert fake.count("/candles") == 2


async def test_a_batch_answers_cached_symbols_at_once_and_reads_the_rest(
    cached_gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """Cached symbols are hits, the others one miss and one source call each; the answer
    keeps the order asked for, repeats once."""
    await cached_gateway.get("/api/v1/price/ETH-USD")  # a miss: now cached
    symbols = "SOL-USD,ETH-USD,BTC-USD,ETH-USD"
    answer = await cached_gateway.get("/api/v1/prices", params={"symbols": symbols})
    assert list(answer.json()["prices"]) == ["SOL-USD", "ETH-USD", "BTC-USD"]
    counted = parse_metrics((await cached_gateway.get("/metrics")).text)
    assert counted.total("gateway_cache_requests_total", kind="price", result="hit") == 1
    assert counted.total("gateway_cache_requests_total", kind="price", result="miss") == 3
    assert fake.count("/ticker") == 3
