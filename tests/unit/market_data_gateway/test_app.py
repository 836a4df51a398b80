"""The app as a whole: source selection shown in /health, the simulated source's routes."""

from __future__ import annotations

import pytest
from market_data_gateway.app import create_app

from shared.market.simulated import SimulatedMarket
from tests.support.fake_coinbase import FakeCoinbase
from tests.support.servers import ThreadServer, free_port
from tests.unit.market_data_gateway.conftest import START, Sleeps, running, settings_for
from tests.unit.shared.fakes import FakeClock


async def test_auto_falls_back_to_simulated_and_says_so(
    clock: FakeClock, sleeps: Sleeps, capsys: pytest.CaptureFixture[str]
) -> None:
    """auto with Coinbase unreachable → simulated answers, /health and the log say so."""
    unreachable = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(unreachable, market_data_source="auto")
    app = create_app(settings, clock=clock, sleep=sleeps)
    async with running(app) as client:
        health = (await client.get("/health")).json()
        price = (await client.get("/api/v1/price/BTC-USD")).json()
    detail = health["details"]["market_source"]
    assert detail["upstream_calls"] == {}
    assert detail["source"] == "simulated"
    assert detail["requested"] == "auto"
    assert detail["fell_back"] is True
    # /health is open: it says why without saying where; the log names the URL.
    assert unreachable not in detail["reason"]
    assert "<url>" in detail["reason"]
    assert health["status"] == "healthy"
    assert price["source"] == "simulated"
    # The lifespan configures logging to stderr, one line per event, loudly.
    err = capsys.readouterr().err
    assert "WARNING market-data-gateway" in err
    assert "MARKET DATA IS SIMULATED" in err
    assert unreachable in err


async def test_auto_uses_coinbase_when_it_answers(
    coinbase: ThreadServer, fake: FakeCoinbase, clock: FakeClock, sleeps: Sleeps
) -> None:
    """auto with Coinbase answering the probe → coinbase, no fallback."""
    app = create_app(settings_for(coinbase.url, market_data_source="auto"), clock=clock)
    async with running(app) as client:
        health = (await client.get("/health")).json()
        price = (await client.get("/api/v1/price/BTC-USD")).json()
    assert health["details"]["market_source"]["fell_back"] is False
    assert price["source"] == "coinbase"
    assert fake.requests["/time"] == 1


async def test_simulated_source_serves_ground_truth(clock: FakeClock) -> None:
    """On the simulated source the regime endpoint agrees with the simulator itself."""
    settings = settings_for("http://unused", market_data_source="simulated", simulation_seed=11)
    truth = SimulatedMarket(11, clock=clock)
    app = create_app(settings, clock=clock)
    async with running(app) as client:
        by_epoch = await client.get(
            "/api/v1/simulation/regime/ETH-USD", params={"granularity": 300, "at": "1700000123"}
        )
        by_iso = await client.get(
            "/api/v1/simulation/regime/ETH-USD",
            params={"granularity": 300, "at": "2023-11-14T22:15:23Z"},
        )
        default = await client.get("/api/v1/simulation/regime/ETH-USD")
        candles = (await client.get("/api/v1/ohlcv/ETH-USD", params={"periods": 3})).json()
    assert by_epoch.status_code == 200
    assert by_epoch.json() == {
        "symbol": "ETH-USD",
        "granularity": 300,
        "at": "2023-11-14T22:15:23Z",
        "candle_open": "2023-11-14T22:15:00Z",
        "regime": truth.regime_at("ETH-USD", 300, 1_700_000_123),
    }
    assert by_iso.json() == by_epoch.json()
    assert default.json()["regime"] == truth.regime_at("ETH-USD", 60, START)
    expected = await truth.candles("ETH-USD", 60, 3)
    assert [c["close"] for c in candles["data"]] == [c.close for c in expected.candles]
    assert candles["source"] == "simulated"


@pytest.mark.parametrize("at", ["yesterday", "nan", "-5", "1e20"])
async def test_bad_at_is_422(clock: FakeClock, at: str) -> None:
    """An `at` that is neither epoch seconds nor an ISO time (or out of range) → 422 problem."""
    app = create_app(settings_for("http://unused", market_data_source="simulated"), clock=clock)
    async with running(app) as client:
        answer = await client.get("/api/v1/simulation/regime/BTC-USD", params={"at": at})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "at"


async def test_health_without_redis_is_memory_cache(gateway_health: dict[str, object]) -> None:
    """No REDIS_URL: the cache is in-process and /health says so (no Redis claimed)."""
    assert gateway_health["status"] == "healthy"
    assert "redis" not in gateway_health["dependencies"]  # type: ignore[operator]
    cache = gateway_health["details"]["cache"]  # type: ignore[index]
    assert cache["backend"] == "memory"
    assert cache["redis"] == "not configured"
    assert gateway_health["details"]["market_source"]["source"] == "coinbase"  # type: ignore[index]


@pytest.fixture
async def gateway_health(coinbase: ThreadServer, clock: FakeClock) -> dict[str, object]:
    app = create_app(settings_for(coinbase.url), clock=clock)
    async with running(app) as client:
        body: dict[str, object] = (await client.get("/health")).json()
    return body
