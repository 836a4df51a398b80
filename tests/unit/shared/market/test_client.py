"""MarketDataClient: the gateway first, the source directly only when the gateway is down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Literal

import httpx
import pytest
from market_data_gateway.app import create_app
from market_data_gateway.config import Settings

from shared.client import ServiceClient
from shared.market.client import MarketDataClient
from shared.market.coinbase import CoinbaseOptions, CoinbaseSource
from shared.market.models import CandleSeries, Product, Quote
from shared.market.simulated import SimulatedMarket
from shared.market.source import UnknownSymbolError
from shared.transport import HttpxTransport, opened
from tests.support import keys
from tests.support.asgi import lifespan_app
from tests.support.fake_coinbase import FakeCoinbase
from tests.support.servers import ThreadServer, free_port, serve_in_thread

NOW = 1_700_000_010.5


async def no_sleep(_: float) -> None:
    """Retries without waiting."""


class Untouchable:
    """A direct source that must not be used."""

    name: Literal["simulated"] = "simulated"

    async def price(self, symbol: str) -> Quote:
        raise AssertionError("the direct source was used")

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        raise AssertionError("the direct source was used")

    async def products(self) -> list[Product]:
        raise AssertionError("the direct source was used")

    async def aclose(self) -> None:
        """Nothing to close."""


@pytest.fixture
def fake() -> FakeCoinbase:
    return FakeCoinbase(clock=lambda: NOW)


@pytest.fixture
def coinbase(fake: FakeCoinbase) -> Iterator[ThreadServer]:
    with serve_in_thread(fake.app) as server:
        yield server


@pytest.fixture
async def gateway(coinbase: ThreadServer) -> AsyncIterator[ServiceClient]:
    """A ServiceClient talking in-process to a running gateway on the fake Coinbase."""
    settings = Settings(
        market_data_source="coinbase",
        coinbase_api_url=coinbase.url,
        redis_url=None,
        log_level="WARNING",
    )
    app = create_app(settings, clock=lambda: NOW, sleep=no_sleep)
    async with lifespan_app(app) as served:
        transport = HttpxTransport(httpx.ASGITransport(app=served))
        settings = Settings(market_data_url="http://gateway", service_key=keys.SERVICE_KEY)
        yield ServiceClient.from_settings(
            "market_data", settings, transport=transport, sleep=no_sleep
        )


@pytest.fixture
async def gateway_down() -> AsyncIterator[ServiceClient]:
    """A ServiceClient whose gateway is a closed port."""
    settings = Settings(market_data_url=f"http://127.0.0.1:{free_port()}", retry_max_attempts=2)
    async with opened(None) as pool:
        yield ServiceClient.from_settings("market_data", settings, transport=pool, sleep=no_sleep)


async def test_reads_through_the_gateway(
    gateway: ServiceClient, coinbase: ThreadServer, fake: FakeCoinbase
) -> None:
    """With the gateway up, prices and candles come from it and equal the source's own."""
    client = MarketDataClient(gateway, Untouchable())
    quote = await client.price("BTC-USD")
    series = await client.candles("BTC-USD", 300, 12)
    assert (quote.via, quote.source) == ("gateway", "coinbase")
    assert quote.price == pytest.approx(fake.price_at("BTC-USD", NOW))
    options = CoinbaseOptions.from_settings(Settings())
    async with opened(None) as pool:
        source = CoinbaseSource(pool, base_url=coinbase.url, options=options, clock=lambda: NOW)
        direct = await source.candles("BTC-USD", 300, 12)
    assert series.via == "gateway"
    assert series.candles == direct.candles


async def test_gateway_down_uses_the_direct_source(gateway_down: ServiceClient) -> None:
    """Gateway unreachable → the same answer read from the source itself, via="direct"."""
    direct = SimulatedMarket(7, clock=lambda: NOW)
    client = MarketDataClient(gateway_down, direct)
    quote = await client.price("ETH-USD")
    series = await client.candles("ETH-USD", 60, 30)
    assert (quote.via, quote.source) == ("direct", "simulated")
    assert series.via == "direct"
    assert series.candles == (await direct.candles("ETH-USD", 60, 30)).candles


async def test_gateway_503_uses_the_direct_source(
    gateway: ServiceClient, fake: FakeCoinbase
) -> None:
    """The gateway answering 503 (its upstream is down) also sends readers to the source."""
    fake.fail_next(500, times=1000)
    client = MarketDataClient(gateway, SimulatedMarket(7, clock=lambda: NOW))
    quote = await client.price("BTC-USD")
    assert quote.via == "direct"


async def test_unknown_symbol_from_the_gateway(gateway: ServiceClient) -> None:
    """A 404 from the gateway is an answer: UnknownSymbolError, no fallback."""
    client = MarketDataClient(gateway, Untouchable())
    with pytest.raises(UnknownSymbolError):
        await client.price("NOPE-USD")
    with pytest.raises(UnknownSymbolError):
        await client.candles("NOPE-USD", 60, 10)
