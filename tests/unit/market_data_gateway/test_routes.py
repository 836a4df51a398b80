"""The gateway's endpoints over the fake Coinbase: shapes, order, limits, errors."""

from __future__ import annotations

import httpx
import pytest
from market_data_gateway.app import create_app
from market_data_gateway.schemas import OHLCVOut, PriceOut

from shared.market.models import GRANULARITIES
from tests.support.fake_coinbase import FakeCoinbase
from tests.support.servers import free_port
from tests.unit.market_data_gateway.conftest import FORMING, START, Sleeps, running, settings_for
from tests.unit.shared.fakes import FakeClock

PROBLEM = "application/problem+json"


async def test_price_shape_and_source(gateway: httpx.AsyncClient, fake: FakeCoinbase) -> None:
    """A price answer has symbol, float price, UTC timestamp with Z, and source coinbase."""
    answer = await gateway.get("/api/v1/price/BTC-USD")
    assert answer.status_code == 200
    body = answer.json()
    PriceOut.model_validate(body)
    assert body["symbol"] == "BTC-USD"
    assert body["source"] == "coinbase"
    assert body["price"] == pytest.approx(fake.price_at("BTC-USD", START), rel=1e-9)
    assert body["timestamp"] == "2023-11-14T22:13:30.500000Z"


async def test_ohlcv_oldest_first_forming_dropped_gaps_kept(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """Closed candles only, oldest first, and a minute without trades stays missing."""
    fake.serve_forming = True
    fake.gaps.add(FORMING - 5 * 60)
    answer = await gateway.get("/api/v1/ohlcv/ETH-USD", params={"periods": 10, "granularity": 60})
    assert answer.status_code == 200
    body = OHLCVOut.model_validate(answer.json())
    opens = [int(c.timestamp.timestamp()) for c in body.data]
    assert opens == [FORMING - k * 60 for k in range(10, 0, -1) if k != 5]
    assert (body.symbol, body.granularity, body.source) == ("ETH-USD", 60, "coinbase")
    assert answer.json()["data"][0]["timestamp"].endswith("Z")


@pytest.mark.parametrize("granularity", GRANULARITIES)
async def test_300_periods_in_one_request_within_the_limit(
    gateway: httpx.AsyncClient, fake: FakeCoinbase, granularity: int
) -> None:
    """periods=300 is one upstream request the 300-row limit accepts, 300 candles back."""
    params = {"periods": 300, "granularity": granularity}
    answer = await gateway.get("/api/v1/ohlcv/BTC-USD", params=params)
    assert answer.status_code == 200
    assert len(answer.json()["data"]) == 300
    assert [c.status for c in fake.calls] == [200]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/price/btc-usd", {}, "symbol"),
        ("/api/v1/price/BTCUSD", {}, "symbol"),
        ("/api/v1/ohlcv/BTC-USD", {"periods": 0}, "periods"),
        ("/api/v1/ohlcv/BTC-USD", {"periods": 301}, "periods"),
        ("/api/v1/ohlcv/BTC-USD", {"periods": "ten"}, "periods"),
        ("/api/v1/ohlcv/BTC-USD", {"granularity": 120}, "granularity"),
        ("/api/v1/ohlcv/BTC-USD", {"granularity": "1m"}, "granularity"),
        ("/api/v1/ohlcv/BTC-USD-X", {}, "symbol"),
    ],
)
async def test_bad_input_is_422_before_any_network_call(
    gateway: httpx.AsyncClient,
    fake: FakeCoinbase,
    path: str,
    params: dict[str, str | int],
    field: str,
) -> None:
    """Bad symbol, periods or granularity → 422 problem naming the field; Coinbase untouched."""
    answer = await gateway.get(path, params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert fake.count() == 0


async def test_429_with_retry_after_then_success(
    gateway: httpx.AsyncClient, fake: FakeCoinbase, sleeps: Sleeps
) -> None:
    """Coinbase's 429 + Retry-After is waited out (injected sleep) and the caller sees 200."""
    fake.fail_next(429, times=1, retry_after=2)
    answer = await gateway.get("/api/v1/ohlcv/BTC-USD", params={"periods": 5})
    assert answer.status_code == 200
    assert sleeps.delays == [2.0]
    assert fake.count("/candles") == 2


async def test_unknown_product_is_404_problem(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """A product Coinbase does not list → 404 problem+json, for price and candles."""
    for symbol, path in [("NOPE-USD", "/api/v1/price/"), ("NOPE-BTC", "/api/v1/ohlcv/")]:
        answer = await gateway.get(path + symbol)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == PROBLEM
        body = answer.json()
        assert body["title"] == "Unknown Symbol"
        assert symbol in body["detail"]
        assert body["trace_id"] == answer.headers["x-trace-id"]
    assert fake.count() == 2


async def test_unknown_product_remembered(
    gateway: httpx.AsyncClient, fake: FakeCoinbase, clock: FakeClock
) -> None:
    """A product Coinbase said it does not list is answered 404 from memory for a minute."""
    for _ in range(5):
        assert (await gateway.get("/api/v1/price/NOPE-USD")).status_code == 404
        assert (await gateway.get("/api/v1/ohlcv/NOPE-USD")).status_code == 404
    assert fake.count() == 1
    clock.advance(61)
    assert (await gateway.get("/api/v1/ohlcv/NOPE-USD")).status_code == 404
    assert fake.count() == 2


async def test_outage_is_503_problem_and_health_degraded(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """Coinbase failing every attempt → 503 problem; /health says the source is degraded."""
    fake.fail_next(500, times=1000)
    answer = await gateway.get("/api/v1/price/BTC-USD")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["service"] == "coinbase"
    health = (await gateway.get("/health")).json()
    assert health["status"] == "degraded"
    assert health["dependencies"]["market_source"] == "degraded"
    fake.clear_failures()
    assert (await gateway.get("/api/v1/price/BTC-USD")).status_code == 200
    assert (await gateway.get("/health")).json()["status"] == "healthy"


async def test_unreachable_coinbase_is_503(clock: FakeClock, sleeps: Sleeps) -> None:
    """Nothing listening at COINBASE_API_URL → 503 problem, never a 500."""
    app = create_app(settings_for(f"http://127.0.0.1:{free_port()}"), clock=clock, sleep=sleeps)
    async with running(app) as client:
        answer = await client.get("/api/v1/ohlcv/BTC-USD")
    assert answer.status_code == 503
    assert "unreachable" in answer.json()["detail"]


async def test_regime_is_404_on_coinbase(gateway: httpx.AsyncClient) -> None:
    """Ground truth exists only on the simulated source: 404 problem elsewhere."""
    answer = await gateway.get("/api/v1/simulation/regime/BTC-USD")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM


async def test_openapi_documents_the_contract(gateway: httpx.AsyncClient) -> None:
    """OpenAPI has descriptions, examples and the problem responses of each endpoint."""
    spec = (await gateway.get("/openapi.json")).json()
    price = spec["paths"]["/api/v1/price/{symbol}"]["get"]
    assert price["description"]
    assert {"200", "404", "422", "503"} <= set(price["responses"])
    assert spec["components"]["schemas"]["PriceOut"]["examples"]
    ohlcv = spec["paths"]["/api/v1/ohlcv/{symbol}"]["get"]
    params = {p["name"]: p for p in ohlcv["parameters"]}
    assert params["periods"]["schema"]["maximum"] == 300
    assert "granularity" in params
