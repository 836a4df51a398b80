"""The gateway's batch price read: one call for many symbols, each cached like the single one."""

from __future__ import annotations

import httpx
import pytest
from market_data_gateway.schemas import PricesOut

from tests.support.fake_coinbase import FakeCoinbase
from tests.unit.market_data_gateway.conftest import START

PROBLEM = "application/problem+json"


async def test_batch_answers_each_symbol_as_the_single_read(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """Every named symbol is priced as `/price/{symbol}` prices it, duplicates once."""
    answer = await gateway.get("/api/v1/prices", params={"symbols": "BTC-USD,ETH-USD,BTC-USD"})
    assert answer.status_code == 200
    body = PricesOut.model_validate(answer.json())
    assert sorted(body.prices) == ["BTC-USD", "ETH-USD"]
    assert body.errors == {}
    for symbol, quote in body.prices.items():
        assert quote.symbol == symbol
        assert quote.price == pytest.approx(fake.price_at(symbol, START), rel=1e-9)
        single = (await gateway.get(f"/api/v1/price/{symbol}")).json()
        assert answer.json()["prices"][symbol] == single
    assert fake.count("/ticker") == 2


async def test_batch_shares_the_single_price_cache(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """A symbol priced a moment ago is answered from the cache: no second exchange call."""
    await gateway.get("/api/v1/price/BTC-USD")
    await gateway.get("/api/v1/prices", params={"symbols": "BTC-USD,ETH-USD"})
    await gateway.get("/api/v1/prices", params={"symbols": "ETH-USD,BTC-USD"})
    assert fake.count("/products/BTC-USD/ticker") == 1
    assert fake.count("/products/ETH-USD/ticker") == 1


async def test_unknown_symbol_is_named_not_fatal(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """A symbol the exchange does not list is in `errors` with 404; the others are priced."""
    answer = await gateway.get("/api/v1/prices", params={"symbols": "BTC-USD,NOPE-USD"})
    assert answer.status_code == 200
    body = answer.json()
    assert list(body["prices"]) == ["BTC-USD"]
    assert body["errors"]["NOPE-USD"]["status"] == 404


async def test_outage_of_every_symbol_is_a_503(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """When nothing could be priced because the source is down, the batch is a 503 problem."""
    fake.fail_next(500, times=100)
    answer = await gateway.get("/api/v1/prices", params={"symbols": "BTC-USD,ETH-USD"})
    assert answer.status_code == 503
    assert answer.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "symbols",
    ["", ",", "btc-usd", "BTC-USD,BTC_USD", ",".join(f"A{i:03d}-USD" for i in range(101))],
)
async def test_bad_symbol_lists_are_422(gateway: httpx.AsyncClient, symbols: str) -> None:
    """Empty, malformed or over-long symbol lists are a 422 problem naming `symbols`."""
    answer = await gateway.get("/api/v1/prices", params={"symbols": symbols})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert "symbols" in answer.text


async def test_batch_candles_answer_each_symbol_as_the_single_read(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """`/ohlcv?symbols=` holds each symbol's `/ohlcv/{symbol}` answer; unknown ones in errors."""
    params: dict[str, str | int] = {
        "symbols": "BTC-USD,ETH-USD,NOPE-USD",
        "periods": 5,
        "granularity": 60,
    }
    answer = await gateway.get("/api/v1/ohlcv", params=params)
    assert answer.status_code == 200
    body = answer.json()
    assert sorted(body["series"]) == ["BTC-USD", "ETH-USD"]
    assert body["errors"]["NOPE-USD"]["status"] == 404
    single = await gateway.get("/api/v1/ohlcv/ETH-USD", params={"periods": 5, "granularity": 60})
    assert body["series"]["ETH-USD"] == single.json()
    assert fake.count("/products/ETH-USD/candles") == 1  # the single read came from the cache
