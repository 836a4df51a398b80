"""choose_source: coinbase, simulated, or auto with a one-time probe."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.market.coinbase import CoinbaseSource
from shared.market.factory import choose_source
from shared.market.simulated import SimulatedMarket
from shared.market.source import MarketUnavailableError
from shared.settings import MarketSettings
from shared.transport import Transport, opened
from tests.support.fake_coinbase import FakeCoinbase
from tests.support.servers import ThreadServer, free_port, serve_in_thread


@pytest.fixture
def fake() -> FakeCoinbase:
    return FakeCoinbase()


@pytest.fixture
def server(fake: FakeCoinbase) -> Iterator[ThreadServer]:
    with serve_in_thread(fake.app) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[Transport]:
    async with opened(None) as pool:
        yield pool


def settings(source: str, url: str) -> MarketSettings:
    return MarketSettings(
        market_data_source=source,
        coinbase_api_url=url,
        coinbase_probe_timeout_seconds=0.5,
        simulation_seed=3,
    )


async def test_auto_with_coinbase_unreachable_falls_back_loudly(
    http: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    """auto + nothing at COINBASE_API_URL → the simulator, a WARNING, and the reason kept."""
    url = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="shared.market.factory"):
        choice = await choose_source(settings("auto", url), http)
    assert isinstance(choice.source, SimulatedMarket)
    assert choice.source.seed == 3
    assert choice.fell_back
    assert choice.describe() == {
        "source": "simulated",
        "requested": "auto",
        "fell_back": True,
        "reason": choice.reason,
    }
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "MARKET DATA IS SIMULATED" in caplog.records[0].getMessage()


async def test_a_fallen_back_source_is_healthy_with_the_reason_in_its_detail(
    http: Transport,
) -> None:
    """The start-up fallback is a decision, not a fault: healthy, `fell_back` in the detail."""
    choice = await choose_source(settings("auto", f"http://127.0.0.1:{free_port()}"), http)
    result = await choice.check()
    assert result.status == "healthy"
    assert result.detail["fell_back"] is True
    assert result.detail["source"] == "simulated"


async def test_a_failing_direct_coinbase_is_degraded_until_it_answers(
    http: Transport, server: ThreadServer, fake: FakeCoinbase
) -> None:
    """Services reading Coinbase directly report its outage in /health, then its recovery."""

    async def no_wait(seconds: float) -> None:
        return None

    choice = await choose_source(settings("coinbase", server.url), http, sleep=no_wait)
    assert (await choice.check()).status == "healthy"
    fake.fail_next(503, times=MarketSettings().coinbase_max_attempts)
    with pytest.raises(MarketUnavailableError):
        await choice.source.price("BTC-USD")
    result = await choice.check()
    assert result.status == "degraded"
    assert "503" in str(result.detail["last_error"])
    await choice.source.price("BTC-USD")
    assert (await choice.check()).status == "healthy"


async def test_auto_with_coinbase_failing_falls_back(
    http: Transport, server: ThreadServer, fake: FakeCoinbase
) -> None:
    """A probe answered with 5xx is as good as no answer: fall back."""
    fake.fail_next(503)
    choice = await choose_source(settings("auto", server.url), http)
    assert choice.source.name == "simulated"
    assert choice.reason is not None
    assert "503" in choice.reason


async def test_auto_with_coinbase_answering_uses_it(
    http: Transport, server: ThreadServer, fake: FakeCoinbase
) -> None:
    """auto + a reachable Coinbase → coinbase, after exactly one probe request."""
    source = (await choose_source(settings("auto", server.url), http)).source
    assert isinstance(source, CoinbaseSource)
    assert fake.requests == {"/time": 1}


async def test_explicit_sources_are_never_probed(
    http: Transport, server: ThreadServer, fake: FakeCoinbase
) -> None:
    """coinbase and simulated are taken as asked, without a network call."""
    unreachable = f"http://127.0.0.1:{free_port()}"
    coinbase = (await choose_source(settings("coinbase", unreachable), http)).source
    simulated = (await choose_source(settings("simulated", server.url), http)).source
    assert coinbase.name == "coinbase"
    assert simulated.name == "simulated"
    assert fake.count() == 0
