"""`open_market`: the market clients a lifespan opens and closes."""

from __future__ import annotations

import httpx
import pytest

from shared.market.simulated import SimulatedMarket
from shared.market.source import UnknownSymbolError
from shared.market.wiring import open_market
from shared.settings import MarketSettings
from shared.transport import AiohttpTransport, HttpxTransport
from tests.support.servers import free_port


class CountingMarket(SimulatedMarket):
    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def test_injected_source_is_used_reported_and_closed() -> None:
    """An injected direct source is the fallback, reported as injected, closed after."""
    source = CountingMarket(1, clock=lambda: 1_700_000_000.0)
    settings = MarketSettings(market_data_url=f"http://127.0.0.1:{free_port()}")
    async with open_market(settings, market_source=source) as wiring:
        assert wiring.choice.describe()["requested"] == "injected"
        quote = await wiring.market.price("BTC-USD")  # the gateway's port is closed
        assert quote.via == "direct"
        assert wiring.client("risk_management", settings).base_url == settings.risk_url
    assert source.closed == 1
    assert isinstance(wiring.transport, AiohttpTransport)
    assert wiring.transport.closed  # the pool open_market made is closed with it


async def test_an_injected_transport_is_used_and_left_open() -> None:
    """An injected transport carries the gateway calls and stays its owner's to close."""
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(404, json={"detail": "no such product"})

    class Kept(HttpxTransport):
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    transport = Kept(httpx.MockTransport(answer))
    settings = MarketSettings(market_data_url="http://gateway", market_data_source="simulated")
    async with open_market(settings, transport=transport) as wiring:
        assert wiring.transport is transport
        with pytest.raises(UnknownSymbolError):
            await wiring.market.price("NOPE-USD")
    assert calls == ["/api/v1/price/NOPE-USD"]
    assert not transport.closed


async def test_configured_source_is_chosen_from_settings() -> None:
    """Without an injected source the settings choose it (here the simulator)."""
    settings = MarketSettings(market_data_source="simulated", simulation_seed=5)
    async with open_market(settings) as wiring:
        assert isinstance(wiring.choice.source, SimulatedMarket)
        assert wiring.choice.source.seed == 5
