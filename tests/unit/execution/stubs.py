"""Stand-ins for Execution's upstreams: a Risk server and a gateway that answer as told.

Both are held to the contract: every request they get and every answer they give is
checked against the real service's OpenAPI document (`tests.support.contract`). A
violation is answered 500 and remembered; the `risk` and `gateway` fixtures fail the
test with it. A test that sends something off the contract on purpose (to test a
fail-safe) says so with `checked = False`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from shared.market.models import CandleSeries, Product, Quote, utc_iso
from shared.market.source import MarketUnavailableError, UnknownSymbolError
from tests.support.contract import ContractError, check_answer, check_request

RiskRule = Callable[[dict[str, Any]], dict[str, Any] | Response]
PRICE = 100.0
# What the stub gateway lists for trading.
LISTED = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD", "ADA-USD", "XRP-USD")
APPROVE = "/api/v1/approve-trade"
PRICE_PATH = "/api/v1/price/{symbol}"
PRICES_PATH = "/api/v1/prices"
OHLCV_MANY_PATH = "/api/v1/ohlcv"
SYMBOLS_PATH = "/api/v1/symbols"


def approve_all(body: dict[str, Any]) -> dict[str, Any]:
    """Approve the full amount at PRICE, as a permissive Risk would answer it."""
    amount = float(body["amount"])
    equity = float(body["current_portfolio"]["cash"]) + amount
    return {
        "approved": True,
        "max_amount": amount,
        "reason": "Approved",
        "binding_constraint": "none",
        "risk_metrics": {
            "portfolio_var": 0.01,
            "portfolio_var_usd": 0.01 * equity,
            "concentration_risk": 0.1,
            "volatility_daily": 0.03,
            "volatility_source": "regime",
        },
        "regime": "TRENDING",
        "regime_confidence": 0.8,
        "price": PRICE,
        "price_source": "coinbase",
        "equity": equity,
        "limits": {
            "max_position_share": 0.25,
            "regime_multiplier": 1.0,
            "var_limit_share": 0.05,
            "var_confidence": 0.95,
            "min_order_usd": 10.0,
            "max_order_usd": 100_000.0,
            "buy_fee_rate": 0.006,
        },
    }


def problem(status: int, detail: str, instance: str) -> JSONResponse:
    """A problem+json answer, in the shape every one of our services sends."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "trace_id": None,
    }
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _checked(violations: list[str], check: Callable[[], None], answer: Response) -> Response:
    try:
        check()
    except ContractError as exc:
        violations.append(str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=500)
    return answer


def _media_type(response: Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip()


@dataclass
class RiskStub:
    """The Risk service's contract, answering with `rule`; remembers every request."""

    rule: RiskRule = approve_all
    checked: bool = True  # False: this test sends off-contract answers on purpose
    requests: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post(APPROVE)
        async def approve(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            self.keys.append(request.headers.get("Idempotency-Key"))
            answer = self.rule(body)
            response = answer if isinstance(answer, Response) else JSONResponse(answer)
            if not self.checked:
                return response

            def check() -> None:
                check_request("risk_management", "POST", APPROVE, body)
                sent = json.loads(bytes(response.body))
                status, media = response.status_code, _media_type(response)
                check_answer("risk_management", "POST", APPROVE, status, media, sent)

            return _checked(self.violations, check, response)

        return app

    def reset(self) -> None:
        self.rule = approve_all
        self.checked = True
        self.requests.clear()
        self.keys.clear()
        self.violations.clear()


@dataclass
class GatewayStub:
    """`GET /api/v1/price/{symbol}` (and the `/prices` batch) from `prices`; unknown
    symbols 404, `down` ones 503; the `/ohlcv` batch has no candles for anyone."""

    prices: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    listed: list[str] = field(default_factory=lambda: list(LISTED))
    violations: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get(PRICE_PATH)
        async def price(symbol: str, request: Request) -> Response:
            response = self._answer(symbol, request.url.path)

            def check() -> None:
                sent = json.loads(bytes(response.body))
                status, media = response.status_code, _media_type(response)
                check_answer("market_data", "GET", PRICE_PATH, status, media, sent)

            return _checked(self.violations, check, response)

        @app.get(PRICES_PATH)
        async def prices(symbols: str, request: Request) -> Response:
            found: dict[str, Any] = {}
            errors: dict[str, Any] = {}
            for symbol in dict.fromkeys(symbols.split(",")):
                answer = self._answer(symbol, request.url.path)
                body = json.loads(bytes(answer.body))
                if answer.status_code == 200:
                    found[symbol] = body
                else:
                    errors[symbol] = {"status": answer.status_code, "detail": body["detail"]}
            response = JSONResponse({"prices": found, "errors": errors})

            def check() -> None:
                sent = json.loads(bytes(response.body))
                check_answer("market_data", "GET", PRICES_PATH, 200, "application/json", sent)

            return _checked(self.violations, check, response)

        @app.get(OHLCV_MANY_PATH)
        async def ohlcv_many(symbols: str, request: Request) -> Response:
            # No candles here: every symbol is named in `errors` (Risk then takes its default).
            errors = {
                s: {"status": 404, "detail": f"no candles for {s}"} for s in symbols.split(",")
            }
            response = JSONResponse({"series": {}, "errors": errors})

            def check() -> None:
                sent = json.loads(bytes(response.body))
                check_answer("market_data", "GET", OHLCV_MANY_PATH, 200, "application/json", sent)

            return _checked(self.violations, check, response)

        @app.get(SYMBOLS_PATH)
        async def symbols() -> Response:
            body = {
                "source": "coinbase",
                "symbols": [
                    {"symbol": s, "base": s.split("-")[0], "quote": s.split("-")[1], "listed": True}
                    for s in self.listed
                ],
            }
            response = JSONResponse(body)

            def check() -> None:
                check_answer("market_data", "GET", SYMBOLS_PATH, 200, "application/json", body)

            return _checked(self.violations, check, response)

        return app

    def _answer(self, symbol: str, path: str) -> Response:
        if symbol in self.down:
            return problem(503, "exchange down", path)
        if symbol not in self.prices:
            return problem(404, f"unknown {symbol}", path)
        value, at = self.prices[symbol]
        return JSONResponse(
            {"symbol": symbol, "price": value, "timestamp": utc_iso(at), "source": "coinbase"}
        )

    def reset(self) -> None:
        self.prices.clear()
        self.down.clear()
        self.listed = list(LISTED)
        self.violations.clear()


class FakeSource:
    """The direct market source behind the gateway: knows `prices`, else unavailable."""

    name = "simulated"

    def __init__(self) -> None:
        self.prices: dict[str, float] = {}

    async def price(self, symbol: str) -> Quote:
        if symbol not in self.prices:
            raise MarketUnavailableError("market", f"no price for {symbol}")
        return Quote(symbol, self.prices[symbol], datetime.now(UTC), "simulated")

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        raise UnknownSymbolError(symbol)

    async def products(self) -> list[Product]:
        return [Product(s, s.split("-")[0], s.split("-")[1], listed=True) for s in LISTED]

    async def aclose(self) -> None:
        return None
