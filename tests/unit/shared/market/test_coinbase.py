"""CoinbaseSource against the fake Coinbase served by a real uvicorn."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from shared.errors import InvalidRequestError
from shared.market.coinbase import CoinbaseOptions, CoinbaseSource
from shared.market.coinbase_format import parse_rfc3339
from shared.market.models import GRANULARITIES
from shared.market.source import MarketUnavailableError, UnknownSymbolError
from shared.settings import MarketSettings
from shared.transport import USER_AGENT, AiohttpTransport, HttpxTransport, Transport
from tests.support.fake_coinbase import FakeCoinbase
from tests.support.servers import ThreadServer, free_port, serve_in_thread

NOW = 1_700_000_010.5  # 30.5 s into the minute that opened at 1_699_999_980
FORMING = 1_699_999_980
OPTIONS = CoinbaseOptions.from_settings(MarketSettings())  # the documented defaults


class Sleeps:
    """An injected sleep that only records how long it was asked to wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake() -> FakeCoinbase:
    return FakeCoinbase(seed=3, clock=lambda: NOW)


@pytest.fixture
def server(fake: FakeCoinbase) -> Iterator[ThreadServer]:
    with serve_in_thread(fake.app) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[Transport]:
    pool = AiohttpTransport()
    yield pool
    await pool.aclose()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def source(server: ThreadServer, http: Transport, sleeps: Sleeps) -> CoinbaseSource:
    return CoinbaseSource(
        http,
        base_url=server.url,
        options=OPTIONS,
        clock=lambda: NOW,
        sleep=sleeps,
        jitter=lambda: 1.0,
    )


async def test_candles_oldest_first_forming_dropped_gaps_kept(
    fake: FakeCoinbase, source: CoinbaseSource
) -> None:
    """Rows come back oldest first, without the forming candle, with gaps left as gaps."""
    fake.serve_forming = True
    fake.gaps |= {FORMING - 3 * 60, FORMING - 7 * 60}
    series = await source.candles("BTC-USD", 60, 10)
    times = [c.time for c in series.candles]
    expected = [FORMING - k * 60 for k in range(10, 0, -1) if k not in (3, 7)]
    assert times == expected
    assert series.source == "coinbase"
    assert fake.calls[-1].params["end"] == "2023-11-14T22:12:00Z"
    row = fake.candle("BTC-USD", 60, times[0], NOW)
    first = series.candles[0]
    assert (first.low, first.high, first.open, first.close, first.volume) == tuple(row[1:])


@pytest.mark.parametrize("granularity", GRANULARITIES)
async def test_300_periods_never_exceed_the_limit(
    fake: FakeCoinbase, source: CoinbaseSource, granularity: int
) -> None:
    """300 periods fit one request, which the fake's 300-bucket limit accepts."""
    series = await source.candles("ETH-USD", granularity, 300)
    assert len(series.candles) == 300
    assert [c.status for c in fake.calls] == [200]
    assert series.candles[-1].time == NOW // granularity * granularity - granularity


async def test_more_than_300_periods_refused_before_any_request(
    fake: FakeCoinbase, source: CoinbaseSource
) -> None:
    """301 periods, a bad granularity or a bad symbol never reach the exchange."""
    for args in (("BTC-USD", 60, 301), ("BTC-USD", 61, 10), ("btc-usd", 60, 10)):
        with pytest.raises(InvalidRequestError):
            await source.candles(*args)
    assert fake.count() == 0


async def test_429_with_retry_after_then_success(
    fake: FakeCoinbase, source: CoinbaseSource, sleeps: Sleeps
) -> None:
    """Two 429s with Retry-After: 3 are waited out (injected sleep), the third try succeeds."""
    fake.fail_next(429, times=2, retry_after=3)
    series = await source.candles("BTC-USD", 300, 5)
    assert len(series.candles) == 5
    assert sleeps.delays == [3.0, 3.0]
    assert fake.count("/candles") == 3


async def test_5xx_retried_with_exponential_backoff(
    fake: FakeCoinbase, source: CoinbaseSource, sleeps: Sleeps
) -> None:
    """500s without Retry-After back off 0.25, 0.5, ... and then the answer is used."""
    fake.fail_next(500, times=2)
    quote = await source.price("BTC-USD")
    assert quote.price > 0
    assert sleeps.delays == [0.25, 0.5]


async def test_unknown_product_is_unknown_symbol(
    fake: FakeCoinbase, source: CoinbaseSource
) -> None:
    """404 NotFound is an answer (UnknownSymbolError), not retried."""
    with pytest.raises(UnknownSymbolError):
        await source.candles("NOPE-USD", 60, 5)
    with pytest.raises(UnknownSymbolError):
        await source.price("NOPE-USD")
    assert fake.count() == 2
    assert source.last_error is None


async def test_persistent_5xx_is_market_unavailable(
    fake: FakeCoinbase, source: CoinbaseSource, sleeps: Sleeps
) -> None:
    """An exchange that keeps failing costs exactly max_attempts requests, then 503."""
    fake.fail_next(503, times=100)
    with pytest.raises(MarketUnavailableError) as caught:
        await source.price("BTC-USD")
    assert caught.value.status == 503
    assert fake.count() == OPTIONS.retry.attempts
    assert len(sleeps.delays) == OPTIONS.retry.attempts - 1
    assert source.last_error is not None
    assert caught.value.headers["Retry-After"].isdigit()  # a 503 always says when to retry


async def test_long_retry_after_gives_up_at_once(
    fake: FakeCoinbase, source: CoinbaseSource, sleeps: Sleeps
) -> None:
    """A Retry-After beyond the request's time budget is passed on to our caller, not waited."""
    fake.fail_next(429, times=5, retry_after=120)
    with pytest.raises(MarketUnavailableError) as caught:
        await source.price("BTC-USD")
    assert caught.value.retry_after == 120
    assert caught.value.headers == {"Retry-After": "120"}
    assert sleeps.delays == []


async def test_a_flood_is_refused_rather_than_queued(
    fake: FakeCoinbase, server: ThreadServer, http: Transport, sleeps: Sleeps
) -> None:
    """Beyond what the rate allows within the time budget, requests fail fast with 503."""
    options = dataclasses.replace(OPTIONS, rate_per_second=1, burst=2, total_timeout=1.5)
    source = CoinbaseSource(
        http, base_url=server.url, options=options, monotonic=lambda: 0.0, sleep=sleeps
    )
    results = await asyncio.gather(
        *(source.price("BTC-USD") for _ in range(5)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, MarketUnavailableError)]
    assert len(refused) == 2  # 2 at once, 1 after 1 s: a 4th would wait past the budget
    assert "rate limit" in refused[0].detail
    assert fake.count() == 3
    assert sleeps.delays == [1.0]


async def test_unreachable_exchange_is_market_unavailable(http: Transport, sleeps: Sleeps) -> None:
    """A closed port is an outage: MarketUnavailableError after bounded attempts."""
    url = f"http://127.0.0.1:{free_port()}"
    source = CoinbaseSource(http, base_url=url, options=OPTIONS, sleep=sleeps)
    with pytest.raises(MarketUnavailableError, match="unreachable") as caught:
        await source.candles("BTC-USD", 60, 5)
    assert len(sleeps.delays) == OPTIONS.retry.attempts - 1
    assert int(caught.value.headers["Retry-After"]) >= 1


async def test_user_agent_on_every_request(fake: FakeCoinbase, source: CoinbaseSource) -> None:
    """Every request carries our User-Agent (the exchange refuses requests without one)."""
    await source.price("BTC-USD")
    await source.candles("BTC-USD", 60, 3)
    assert await source.probe(1.0) is None
    assert [c.user_agent for c in fake.calls] == [USER_AGENT] * 3


async def test_ticker_strings_and_nanosecond_time(
    fake: FakeCoinbase, source: CoinbaseSource
) -> None:
    """The ticker's string price becomes a float; its 9-digit time is parsed."""
    quote = await source.price("ETH-USD")
    assert quote.price == pytest.approx(fake.price_at("ETH-USD", NOW), rel=1e-9)
    assert quote.time == datetime.fromtimestamp(NOW, UTC)
    assert quote.source == "coinbase"


async def test_the_source_runs_on_the_in_process_transport_too(
    fake: FakeCoinbase, sleeps: Sleeps
) -> None:
    """Over `HttpxTransport` (the fake served in process) the same retries, Retry-After
    included, and the same answers: the source only knows the transport seam."""
    transport = HttpxTransport(httpx.ASGITransport(app=fake.app))
    source = CoinbaseSource(
        transport,
        base_url="http://coinbase",
        options=OPTIONS,
        clock=lambda: NOW,
        sleep=sleeps,
        jitter=lambda: 1.0,
    )
    fake.fail_next(429, times=1, retry_after=2)
    fake.fail_next(503, times=1)
    series = await source.candles("BTC-USD", 60, 3)
    assert len(series.candles) == 3
    assert sleeps.delays == [2.0, 0.5]
    assert [c.user_agent for c in fake.calls] == [USER_AGENT] * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14T22:13:30.123456789Z", datetime(2023, 11, 14, 22, 13, 30, 123456, UTC)),
        ("2023-11-14T22:13:30Z", datetime(2023, 11, 14, 22, 13, 30, tzinfo=UTC)),
        ("2023-11-14t22:13:30.5z", datetime(2023, 11, 14, 22, 13, 30, 500000, UTC)),
        ("2023-11-14T23:13:30.1+01:00", datetime(2023, 11, 14, 22, 13, 30, 100000, UTC)),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime) -> None:
    """RFC 3339 with 0-9 fractional digits, Z or an offset, any case, becomes aware UTC."""
    assert parse_rfc3339(text) == expected


def test_parse_rfc3339_rejects_garbage() -> None:
    """Anything else is a ValueError, not a wrong time."""
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339("yesterday")


async def test_probe_reports_what_failed(http: Transport) -> None:
    """The probe answers None when Coinbase answers, else a short reason."""
    source = CoinbaseSource(http, base_url=f"http://127.0.0.1:{free_port()}", options=OPTIONS)
    reason = await source.probe(0.5)
    assert reason is not None
    assert reason.startswith("ClientConnectorError")
    assert reason.endswith(f"from {source.base_url}")


async def test_fake_speaks_the_exchange_limits(fake: FakeCoinbase, server: ThreadServer) -> None:
    """The fake refuses 301 buckets and a missing User-Agent exactly as Coinbase does."""
    async with httpx.AsyncClient(base_url=server.url) as raw:
        too_many = {"granularity": 60, "start": 0, "end": 300 * 60}
        answer = await raw.get(
            "/products/BTC-USD/candles", params=too_many, headers={"User-Agent": "t"}
        )
        assert answer.status_code == 400
        assert answer.json() == {"message": "Count of aggregations requested exceeds 300"}
        exactly = {"granularity": 60, "start": 0, "end": 299 * 60}
        answer = await raw.get(
            "/products/BTC-USD/candles", params=exactly, headers={"User-Agent": "t"}
        )
        assert answer.status_code == 200
        assert len(answer.json()) == 300
        assert answer.json()[0][0] > answer.json()[-1][0]  # newest first
        del raw.headers["User-Agent"]
        assert (await raw.get("/products/BTC-USD/ticker")).status_code == 400
        assert (await raw.get("/products/NOPE-USD/ticker", headers={"User-Agent": "t"})).json() == {
            "message": "NotFound"
        }


async def test_fake_serve_sets_its_url() -> None:
    """`FakeCoinbase.serve()` runs it on a real port and exposes the URL to point at."""
    fake = FakeCoinbase()
    with fake.serve():
        async with httpx.AsyncClient(base_url=fake.url, headers={"User-Agent": "t"}) as raw:
            assert (await raw.get("/time")).status_code == 200
    assert fake.url == ""
    assert fake.requests["/time"] == 1
