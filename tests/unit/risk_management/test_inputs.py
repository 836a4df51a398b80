"""Risk's fail-safes on bad inputs: an unusable price refuses, a strange regime is UNKNOWN.

The regime stub here answers off the contract on purpose (an unknown label, a list, a
body without `regime`, text): those are the answers the fail-safes exist for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from risk_management.app import create_app
from risk_management.config import Settings
from risk_management.inputs import PriceReading, read_prices, read_volatilities

from shared.auth import Role
from shared.client import ServiceClient
from shared.market.client import MarketDataClient
from shared.market.models import CandleSeries, Quote
from shared.market.source import MarketSource, MarketUnavailableError, UnknownSymbolError
from shared.transport import HttpxTransport
from tests.support import keys
from tests.support.contract import check_answer
from tests.support.servers import free_port, serve_in_thread
from tests.unit.risk_management.upstreams import simulator

ORDER = {
    "symbol": "BTC-USD",
    "side": "buy",
    "amount": 1_000,
    "current_portfolio": {"cash": 100_000, "positions": {}},
}


class PricedAt:
    """The simulator as the direct market source, but quoting BTC-USD at `price`."""

    name = "simulated"

    def __init__(self, price: float) -> None:
        self.price_value = price
        self.market = simulator()

    async def price(self, symbol: str) -> Quote:
        return Quote(symbol, self.price_value, datetime.now(UTC), "simulated")

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        return await self.market.candles(symbol, granularity, periods)

    async def aclose(self) -> None:
        """Nothing to release."""


ASKED: list[dict[str, str]] = []  # the query of each question the regime stub got


def regime_answering(answer: Response) -> FastAPI:
    """A regime service that gives `answer` to every question (and notes the query)."""
    app = FastAPI()

    @app.get("/api/v1/regime/{symbol}")
    async def regime(symbol: str, request: Request) -> Response:
        ASKED.append(dict(request.query_params))
        return answer

    return app


@contextmanager
def risk_with(
    *, regime: Response | None = None, direct: MarketSource | None = None, **overrides: Any
) -> Iterator[str]:
    """Risk with the gateway down, its market read from `direct`, its regime from a stub."""
    closed = f"http://127.0.0.1:{free_port()}"
    ASKED.clear()
    with serve_in_thread(regime_answering(regime or JSONResponse({}))) as regime_server:
        settings = Settings(
            market_data_url=closed,
            market_data_source="simulated",
            regime_url=regime_server.url if regime is not None else closed,
            retry_max_attempts=1,
            **overrides,
        )
        app = create_app(settings, market_source=direct or simulator())
        with serve_in_thread(app) as server:
            yield server.url


def approve(url: str) -> dict[str, Any]:
    response = httpx.post(
        url + "/api/v1/approve-trade", json=ORDER, headers=keys.headers(Role.SERVICE), timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def regime_body(label: object) -> dict[str, Any]:
    return {
        "symbol": "BTC-USD",
        "regime": label,
        "confidence": 0.9,
        "granularity": 60,
        "indicators": {"adx": 40.0, "choppiness": 30.0, "volatility": 0.0005},
    }


@pytest.mark.parametrize("price", [0.0, -5.0, math.nan, math.inf])
def test_an_unusable_price_refuses_the_trade(price: float) -> None:
    """A quote of zero, below zero, NaN or infinite is no price: refused, never sized."""
    with risk_with(direct=PricedAt(price)) as url:  # type: ignore[arg-type]
        body = approve(url)
    assert (body["approved"], body["max_amount"]) == (False, 0)
    assert body["binding_constraint"] == "no_price"
    assert f"unusable price {price!r}" in body["reason"]
    assert (body["price"], body["risk_metrics"]) == (None, None)


@pytest.mark.parametrize("label", ["SIDEWAYS", "", "BULL"])
def test_an_unknown_regime_label_is_sized_as_unknown(label: str) -> None:
    """A label that is none of the regimes sizes at UNKNOWN's 0.1, never as TRENDING."""
    with risk_with(regime=JSONResponse(regime_body(label))) as url:
        body = approve(url)
    assert (body["approved"], body["max_amount"], body["regime"]) == (True, 100, "UNKNOWN")
    assert body["limits"]["regime_multiplier"] == 0.1


def test_a_known_regime_label_is_read_in_any_case() -> None:
    """'choppy' is CHOPPY: the multiplier 0.5 applies, and the regime's volatility is used."""
    with risk_with(regime=JSONResponse(regime_body("choppy"))) as url:
        body = approve(url)
    assert (body["max_amount"], body["regime"], body["regime_confidence"]) == (500, "CHOPPY", 0.9)
    metrics = body["risk_metrics"]
    assert metrics["volatility_source"] == "regime"
    assert metrics["volatility_daily"] == pytest.approx(0.0005 * math.sqrt(1440), rel=1e-12)


def test_the_regime_is_asked_at_the_configured_granularity() -> None:
    """VOLATILITY_GRANULARITY=300: the regime service is asked for 5-minute candles; its
    per-candle volatility is scaled to a day by the granularity its answer states."""
    with risk_with(regime=JSONResponse(regime_body("TRENDING")), volatility_granularity=300) as url:
        body = approve(url)
    assert ASKED == [{"granularity": "300"}]
    daily = body["risk_metrics"]["volatility_daily"]
    assert daily == pytest.approx(0.0005 * math.sqrt(86_400 / 60), rel=1e-12)


def test_a_zero_volatility_from_the_regime_is_a_reading() -> None:
    """A flat market's volatility of 0 is the regime's answer (raised to the floor), not
    a missing one to be measured again from the candles."""
    body = regime_body("TRENDING")
    body["indicators"]["volatility"] = 0.0
    with risk_with(regime=JSONResponse(body), min_daily_volatility=0.02) as url:
        answer = approve(url)
    assert answer["risk_metrics"]["volatility_source"] == "regime"
    assert answer["risk_metrics"]["volatility_daily"] == 0.02


@pytest.mark.parametrize("volatility", [None, -0.001, "nan"], ids=str)
def test_a_regime_answer_without_a_usable_volatility_falls_back_to_candles(
    volatility: object,
) -> None:
    """No, negative or NaN volatility in the regime's answer: measured from the candles."""
    body = regime_body("TRENDING")
    body["indicators"]["volatility"] = volatility
    with risk_with(regime=JSONResponse(body)) as url:
        answer = approve(url)
    assert (answer["approved"], answer["regime"]) == (True, "TRENDING")
    assert answer["risk_metrics"]["volatility_source"] == "candles"


@pytest.mark.parametrize(
    "answer",
    [
        JSONResponse([regime_body("TRENDING")]),
        JSONResponse({"confidence": 0.9}),
        JSONResponse(regime_body(7)),
        JSONResponse(regime_body("TRENDING") | {"confidence": "high"}),
        PlainTextResponse("TRENDING"),
    ],
    ids=["list", "no-regime", "numeric-regime", "text-confidence", "text-body"],
)
def test_an_unreadable_regime_answer_is_sized_as_unknown(answer: Response) -> None:
    """A regime answer that cannot be read sizes as UNKNOWN, and the reason says so."""
    with risk_with(regime=answer) as url:
        body = approve(url)
    assert (body["approved"], body["max_amount"], body["regime"]) == (True, 100, "UNKNOWN")
    assert body["regime_confidence"] is None
    assert "regime service unavailable (unreadable answer); sized as UNKNOWN" in body["reason"]


class FewCandles(PricedAt):
    """A market with a price but a single candle: no volatility can be measured."""

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        return await self.market.candles(symbol, granularity, 1)


def test_too_few_candles_for_a_volatility_take_the_default() -> None:
    """Regime down and one candle: no volatility is measured, the 10% default is used, noted."""
    with risk_with(direct=FewCandles(50_000.0)) as url:  # type: ignore[arg-type]
        body = approve(url)
    assert body["approved"] is True
    assert body["risk_metrics"]["volatility_source"] == "default"
    assert body["risk_metrics"]["volatility_daily"] == 0.10
    assert "no volatility for BTC-USD: assumed 10.0% daily" in body["reason"]


class Failing(PricedAt):
    """A market whose price read fails with `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__(1.0)
        self.error = error

    async def price(self, symbol: str) -> Quote:
        raise self.error


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (UnknownSymbolError("BTC-USD"), "BTC-USD"),
        (MarketUnavailableError("simulated", "the exchange is down"), "the exchange is down"),
        (KeyError("price"), "KeyError"),
    ],
    ids=["unknown-symbol", "unavailable", "malformed"],
)
def test_no_price_refuses_and_says_why(error: Exception, said: str) -> None:
    """An unknown symbol, a market down, or a malformed answer: refused, naming the cause."""
    with risk_with(direct=Failing(error)) as url:  # type: ignore[arg-type]
        body = approve(url)
    assert (body["approved"], body["binding_constraint"]) == (False, "no_price")
    assert body["reason"].startswith("No price for BTC-USD from the gateway or the market source")
    assert said in body["reason"]


def test_a_sub_dollar_price_is_a_price() -> None:
    """0.15 (DOGE's range) is a usable price: the trade is sized."""
    with risk_with(direct=PricedAt(0.15)) as url:  # type: ignore[arg-type]
        body = approve(url)
    assert (body["approved"], body["price"]) == (True, 0.15)


async def test_a_symbol_missing_from_the_gateway_batch_has_no_price() -> None:
    """A batch answer naming neither a price nor an error for a symbol: "no answer"."""
    body: dict[str, Any] = {"prices": {}, "errors": {}}
    check_answer("market_data", "GET", "/api/v1/prices", 200, "application/json", body)
    transport = HttpxTransport(httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    gateway = ServiceClient.from_settings("market_data", Settings(), transport=transport)
    market = MarketDataClient(gateway, simulator())
    readings = await read_prices(market, ["BTC-USD"])
    assert readings == {"BTC-USD": PriceReading(None, "no answer")}


async def test_a_refused_gateway_batch_leaves_every_symbol_unread_with_its_reason() -> None:
    """The gateway refusing the batch itself (a 4xx, not an outage: no fallback): every
    symbol's price is missing with the gateway's words, and every volatility is None."""
    problem = {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "symbols: at most 100 BASE-QUOTE product ids",
        "instance": "/api/v1/prices",
        "trace_id": None,
    }
    check_answer("market_data", "GET", "/api/v1/prices", 422, "application/problem+json", problem)
    check_answer("market_data", "GET", "/api/v1/ohlcv", 422, "application/problem+json", problem)
    transport = HttpxTransport(
        httpx.MockTransport(
            lambda request: httpx.Response(
                422, json=problem, headers={"content-type": "application/problem+json"}
            )
        )
    )
    gateway = ServiceClient.from_settings("market_data", Settings(), transport=transport)
    market = MarketDataClient(gateway, simulator())
    symbols = ["BTC-USD", "ETH-USD"]
    prices = await read_prices(market, symbols)
    assert set(prices) == set(symbols)
    for reading in prices.values():
        assert reading.quote is None
        assert reading.problem is not None
        assert "symbols: at most 100 BASE-QUOTE product ids" in reading.problem
    assert await read_volatilities(market, symbols, 3600, 30) == dict.fromkeys(symbols)
