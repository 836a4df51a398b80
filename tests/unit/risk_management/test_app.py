"""The service over real sockets: upstreams up, regime service down, no price at all."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from risk_management.app import create_app
from risk_management.config import Settings

from shared.market.source import MarketSource
from tests.support import keys
from tests.support.fake_coinbase import FakeCoinbase
from tests.support.servers import ThreadServer, free_port, serve_in_thread
from tests.unit.risk_management.upstreams import (
    RegimeStub,
    fixed_clock,
    gateway,
    regime_service,
    simulator,
)

Z95 = 1.6448536269514722
RiskServer = Callable[..., AbstractContextManager[ThreadServer]]


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def stack() -> Iterator[dict[str, Any]]:
    """The real gateway over the simulator and a regime stub (CHOPPY), as real servers."""
    regime = RegimeStub("CHOPPY", volatility=0.0005)
    with ExitStack() as stack:
        gateway_server = stack.enter_context(serve_in_thread(gateway()))
        regime_server = stack.enter_context(serve_in_thread(regime.app()))
        yield {"gateway": gateway_server.url, "regime": regime_server.url, "stub": regime}
    assert not regime.violations, "\n".join(regime.violations)


@pytest.fixture
def risk() -> RiskServer:
    """Start the risk service with settings overrides and an optional direct source."""

    @contextmanager
    def start(direct: MarketSource | None = None, **overrides: Any) -> Iterator[ThreadServer]:
        settings = Settings(**{"market_data_source": "simulated", **overrides})
        with serve_in_thread(create_app(settings, market_source=direct)) as server:
            yield server

    return start


def order(amount: float = 1_000, side: str = "buy", **portfolio: Any) -> dict[str, Any]:
    book = {"cash": 100_000.0, "positions": {}, **portfolio}
    return {"symbol": "BTC-USD", "side": side, "amount": amount, "current_portfolio": book}


async def post(url: str, body: Any, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(headers=keys.headers(), base_url=url, timeout=30) as client:
        return await client.post("/api/v1/approve-trade", json=body, headers=headers)


async def test_choppy_regime_reduces_the_order(stack: dict[str, Any], risk: RiskServer) -> None:
    """Price and regime come from the upstreams; CHOPPY halves the order; metrics add up."""
    btc = (await simulator().price("BTC-USD")).price
    with risk(market_data_url=stack["gateway"], regime_url=stack["regime"]) as server:
        response = await post(
            server.url, order(1_000), **{"X-Trace-ID": "0000000000000000000000000000f001"}
        )
    assert response.status_code == 200
    body = response.json()
    assert body["approved"] is True
    assert body["max_amount"] == 500
    assert body["reason"] == "Position size reduced due to CHOPPY regime"
    assert body["binding_constraint"] == "regime"
    assert (body["regime"], body["regime_confidence"]) == ("CHOPPY", 0.7)
    assert body["price"] == pytest.approx(btc, rel=1e-12)
    sigma = 0.0005 * math.sqrt(1440)
    metrics = body["risk_metrics"]
    assert metrics["volatility_source"] == "regime"
    assert metrics["volatility_daily"] == pytest.approx(sigma, abs=1e-12)
    assert metrics["portfolio_var_usd"] == pytest.approx(Z95 * sigma * 500, abs=1e-9)
    assert metrics["portfolio_var"] == pytest.approx(Z95 * sigma * 500 / 100_000, abs=1e-12)
    assert metrics["concentration_risk"] == pytest.approx(0.005, abs=1e-12)
    assert stack["stub"].trace_ids == ["0000000000000000000000000000f001"]


async def test_regime_service_down_sizes_as_unknown(
    stack: dict[str, Any], risk: RiskServer
) -> None:
    """Regime unreachable: UNKNOWN regime, the most conservative size, said in the reason."""
    with risk(market_data_url=stack["gateway"], regime_url=closed_url()) as server:
        body = (await post(server.url, order(1_000))).json()
    assert body["approved"] is True
    assert body["max_amount"] == 100  # 0.1 x 1000
    assert body["regime"] == "UNKNOWN"
    assert body["regime_confidence"] is None
    assert body["reason"].startswith("Position size reduced due to UNKNOWN regime")
    assert "regime service unavailable" in body["reason"]
    assert body["risk_metrics"]["volatility_source"] == "candles"


async def test_no_price_anywhere_refuses(stack: dict[str, Any], risk: RiskServer) -> None:
    """Gateway down and Coinbase unreachable: refused with max_amount 0, never sized blind."""
    settings = {
        "market_data_url": closed_url(),
        "regime_url": stack["regime"],
        "market_data_source": "coinbase",
        "coinbase_api_url": closed_url(),
    }
    with risk(**settings) as server:
        response = await post(server.url, order(1_000))
    body = response.json()
    assert response.status_code == 200
    assert (body["approved"], body["max_amount"]) == (False, 0)
    assert body["binding_constraint"] == "no_price"
    assert body["reason"].startswith("No price for BTC-USD")
    assert (body["price"], body["risk_metrics"]) == (None, None)


async def test_both_upstreams_down_still_refuses_cleanly(risk: RiskServer) -> None:
    """Nothing reachable at all: a refusal naming both problems, not an error."""
    settings = {
        "market_data_url": closed_url(),
        "regime_url": closed_url(),
        "market_data_source": "coinbase",
        "coinbase_api_url": closed_url(),
    }
    with risk(**settings) as server:
        body = (await post(server.url, order(1_000))).json()
    assert (body["approved"], body["regime"]) == (False, "UNKNOWN")
    assert "No price for BTC-USD" in body["reason"]
    assert "regime service unavailable" in body["reason"]


async def test_gateway_down_prices_from_the_direct_source(
    stack: dict[str, Any], risk: RiskServer
) -> None:
    """With the gateway down the direct source prices the trade."""
    btc = (await simulator().price("BTC-USD")).price
    with risk(simulator(), market_data_url=closed_url(), regime_url=stack["regime"]) as server:
        body = (await post(server.url, order(1_000))).json()
    assert body["approved"] is True
    assert body["price"] == pytest.approx(btc, rel=1e-12)


async def test_unlisted_symbol_is_refused(stack: dict[str, Any], risk: RiskServer) -> None:
    """A symbol the exchange does not list (gateway 404) cannot be priced: refused."""
    fake = FakeCoinbase(clock=fixed_clock)
    with ExitStack() as servers:
        exchange = servers.enter_context(serve_in_thread(fake.app))
        gateway_url = servers.enter_context(
            serve_in_thread(gateway(market_data_source="coinbase", coinbase_api_url=exchange.url))
        ).url
        server = servers.enter_context(
            risk(market_data_url=gateway_url, regime_url=stack["regime"])
        )
        body = (await post(server.url, {**order(1_000), "symbol": "NOPE-USD"})).json()
    assert (body["approved"], body["binding_constraint"]) == (False, "no_price")
    assert "does not list" in body["reason"]


async def test_real_gateway_and_regime_service(risk: RiskServer) -> None:
    """Over the real regime service, its regime and volatility are the ones used."""
    with ExitStack() as servers:
        gateway_url = servers.enter_context(serve_in_thread(gateway())).url
        regime_url = servers.enter_context(serve_in_thread(regime_service(gateway_url))).url
        async with httpx.AsyncClient(headers=keys.headers(), base_url=regime_url) as client:
            verdict = (await client.get("/api/v1/regime/BTC-USD?granularity=60")).json()
        server = servers.enter_context(risk(market_data_url=gateway_url, regime_url=regime_url))
        body = (await post(server.url, order(1_000))).json()
    multiplier = {"TRENDING": 1.0, "CHOPPY": 0.5, "VOLATILE": 0.25, "UNKNOWN": 0.1}
    assert body["regime"] == verdict["regime"]
    assert body["regime_confidence"] == verdict["confidence"]
    sigma = max(verdict["indicators"]["volatility"] * math.sqrt(1440), 0.002)
    assert body["risk_metrics"]["volatility_daily"] == pytest.approx(sigma, rel=1e-12)
    assert body["risk_metrics"]["volatility_source"] == "regime"
    assert body["max_amount"] == 1_000 * multiplier[verdict["regime"]]
    assert body["price"] == (await simulator().price("BTC-USD")).price


async def test_held_positions_are_valued(stack: dict[str, Any], risk: RiskServer) -> None:
    """Equity is cash plus every holding at its price; a sell is capped by the holding."""
    sim = simulator()
    btc, eth = (await sim.price("BTC-USD")).price, (await sim.price("ETH-USD")).price
    positions = {"BTC-USD": 0.01, "ETH-USD": 2.0}
    with risk(market_data_url=stack["gateway"], regime_url=stack["regime"]) as server:
        body = (await post(server.url, order(1e6, "sell", cash=500.0, positions=positions))).json()
    assert body["equity"] == pytest.approx(500 + 0.01 * btc + 2 * eth, rel=1e-12)
    assert body["max_amount"] == pytest.approx(math.floor(0.01 * btc * 100) / 100, abs=1e-9)
    assert body["binding_constraint"] == "holdings"
    assert body["risk_metrics"]["concentration_risk"] == pytest.approx(0, abs=1e-4)


async def test_health_lists_the_upstreams(stack: dict[str, Any], risk: RiskServer) -> None:
    """/health names the gateway, the regime service and the market source."""
    with risk(market_data_url=stack["gateway"], regime_url=stack["regime"]) as server:
        async with httpx.AsyncClient(headers=keys.headers(), base_url=server.url) as client:
            response = await client.get("/health")
    assert response.status_code == 200
    deps = response.json()["dependencies"]
    assert set(deps) == {"market_data", "regime_detection", "market_source"}
