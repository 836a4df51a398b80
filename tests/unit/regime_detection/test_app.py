"""Regime Detection over HTTP: through the gateway, around it, and with no market at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from market_data_gateway.app import create_app as create_gateway
from market_data_gateway.config import Settings as GatewaySettings
from regime_detection.app import create_app
from regime_detection.config import Settings
from regime_detection.schemas import RegimeResponse

from shared.market.models import CandleSeries, Quote
from shared.market.simulated import SimulatedMarket
from shared.market.source import MarketUnavailableError
from tests.support.asgi import asgi_client
from tests.support.metrics import parse_metrics
from tests.support.servers import free_port, serve_in_thread

CLOSED = "http://127.0.0.1:{}"


def _settings(gateway_url: str, **extra: object) -> Settings:
    values = {"market_data_source": "simulated", "retry_max_attempts": 1, **extra}
    return Settings.model_validate({"market_data_url": gateway_url, **values})


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "http://regime") as client:
        yield client


class FakeSource:
    """A direct source that counts its reads and returns what it is told."""

    name = "simulated"

    def __init__(self, *, fail: bool = False, candles: int | None = None) -> None:
        self.inner = SimulatedMarket(7)
        self.fail = fail
        self.candles_cap = candles
        self.reads = 0

    async def price(self, symbol: str) -> Quote:
        return await self.inner.price(symbol)

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        self.reads += 1
        if self.fail:
            raise MarketUnavailableError("coinbase", "the exchange is down")
        count = periods if self.candles_cap is None else min(periods, self.candles_cap)
        return await self.inner.candles(symbol, granularity, count)

    async def aclose(self) -> None:
        return None


async def test_reads_candles_through_the_gateway() -> None:
    """Gateway up: 200 with the regime, indicators and via=gateway."""
    gateway = create_gateway(GatewaySettings(market_data_source="simulated"))
    with serve_in_thread(gateway) as server:
        async with _client(create_app(_settings(server.url))) as client:
            response = await client.get("/api/v1/regime/BTC-USD", params={"periods": 120})
    assert response.status_code == 200
    body = response.json()
    assert body["regime"] in {"TRENDING", "CHOPPY", "VOLATILE"}
    assert 0 <= body["confidence"] <= 1
    assert set(body["indicators"]) >= {"adx", "choppiness", "volatility", "volatility_annualized"}
    assert (body["source"], body["via"]) == ("simulated", "gateway")
    assert (body["periods"], body["candles"], body["baseline_candles"]) == (120, 120, 300)
    assert body["timestamp"].endswith("Z")


async def test_gateway_down_falls_back_to_the_direct_source() -> None:
    """Gateway URL at a closed port: still 200, read from the simulator directly."""
    app = create_app(_settings(CLOSED.format(free_port())))
    async with _client(app) as client:
        response = await client.get("/api/v1/regime/ETH-USD", params={"granularity": 300})
    assert response.status_code == 200
    body = response.json()
    assert (body["source"], body["via"]) == ("simulated", "direct")
    assert body["periods"] == 100
    assert body["granularity"] == 300


async def test_gateway_and_source_down_is_a_503_problem() -> None:
    """No market data from anywhere: 503 problem+json, never a 500."""
    source = FakeSource(fail=True)
    app = create_app(_settings(CLOSED.format(free_port())), market_source=source)  # type: ignore[arg-type]
    async with _client(app) as client:
        response = await client.get("/api/v1/regime/BTC-USD")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 503
    assert source.reads == 1


async def test_gateway_down_and_coinbase_unreachable_is_a_503_problem() -> None:
    """MARKET_DATA_SOURCE=coinbase at a closed port, gateway down too: 503 problem."""
    settings = _settings(
        CLOSED.format(free_port()),
        market_data_source="coinbase",
        coinbase_api_url=CLOSED.format(free_port()),
        service_timeout_seconds=2.0,
    )
    async with _client(create_app(settings)) as client:
        response = await client.get("/api/v1/regime/BTC-USD")
    assert response.status_code == 503
    assert response.json()["title"] == "Service Unavailable"


async def test_too_few_candles_is_200_unknown_with_a_reason() -> None:
    """A gappy market with 20 candles: UNKNOWN, confidence 0, the reason, null indicators."""
    source = FakeSource(candles=20)
    app = create_app(_settings(CLOSED.format(free_port())), market_source=source)  # type: ignore[arg-type]
    async with _client(app) as client:
        response = await client.get("/api/v1/regime/SOL-USD")
    assert response.status_code == 200
    body = response.json()
    assert (body["regime"], body["confidence"]) == ("UNKNOWN", 0.0)
    assert "20 candles" in body["reason"]
    assert body["indicators"]["adx"] is None


async def test_bad_input_is_422_before_any_network_call() -> None:
    """Bad symbol, granularity or periods: 422 naming the field; nothing is read."""
    source = FakeSource()
    app = create_app(_settings(CLOSED.format(free_port())), market_source=source)  # type: ignore[arg-type]
    cases = [
        ("/api/v1/regime/btc-usd", {}, "symbol"),
        ("/api/v1/regime/BTC-USD", {"granularity": 120}, "granularity"),
        ("/api/v1/regime/BTC-USD", {"periods": 29}, "periods"),
        ("/api/v1/regime/BTC-USD", {"periods": 301}, "periods"),
    ]
    async with _client(app) as client:
        for path, params, field in cases:
            response = await client.get(path, params=params)
            assert response.status_code == 422, (path, params)
            assert field in response.json()["detail"]
        health = (await client.get("/health")).json()
    assert source.reads == 0
    assert health["details"]["market_data"]["consecutive_failures"] == 0


async def test_health_reports_the_gateway_breaker_and_the_source() -> None:
    """/health lists market_data (breaker) and market_source (which source, chosen how)."""
    app = create_app(_settings(CLOSED.format(free_port())))
    async with _client(app) as client:
        body = (await client.get("/health")).json()
    assert set(body["dependencies"]) == {"market_data", "market_source"}
    assert body["details"]["market_source"]["source"] == "simulated"


async def test_cached_body_is_the_documented_response() -> None:
    """The pre-rendered body is a valid RegimeResponse, repeated byte for byte, and documented."""
    source = FakeSource()
    app = create_app(_settings(CLOSED.format(free_port())), market_source=source)  # type: ignore[arg-type]
    async with _client(app) as client:
        first = await client.get("/api/v1/regime/BTC-USD")
        second = await client.get("/api/v1/regime/BTC-USD")
    assert first.headers["content-type"] == "application/json"
    assert RegimeResponse.model_validate_json(first.content).symbol == "BTC-USD"
    assert second.content == first.content
    assert source.reads == 1
    ok = app.openapi()["paths"]["/api/v1/regime/{symbol}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/RegimeResponse")


async def test_metrics_count_classifications_and_the_gateway_attempts() -> None:
    """Two symbols classified once each (a repeat is answered from the cache, not counted),
    the gateway's failed attempts counted by outcome and its breaker exported."""
    app = create_app(_settings(CLOSED.format(free_port())))
    async with _client(app) as client:
        regimes = []
        for symbol in ("BTC-USD", "ETH-USD", "BTC-USD"):
            response = await client.get(f"/api/v1/regime/{symbol}")
            assert response.status_code == 200
            regimes.append(response.json()["regime"])
        counted = parse_metrics((await client.get("/metrics")).text)
    assert counted.total("regime_classifications_total") == 2
    for regime in set(regimes):
        assert counted.total("regime_classifications_total", regime=regime) == regimes[:2].count(
            regime
        )
    gateway = {"target": "market_data"}
    assert counted.total("upstream_requests_total", outcome="transport_error", **gateway) == 2
    assert counted.total("circuit_breaker_state", **gateway) == 0
    assert counted.label_values("http_requests_total", "route") == {"/api/v1/regime/{symbol}"}
