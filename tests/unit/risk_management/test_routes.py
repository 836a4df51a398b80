"""Bad input is a 422 problem naming the field, before any upstream call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from risk_management.app import create_app
from risk_management.config import Settings
from risk_management.schemas import ApproveTradeResponse

from tests.support.asgi import asgi_client
from tests.support.servers import free_port


def _valid() -> dict[str, Any]:
    return {
        "symbol": "BTC-USD",
        "side": "buy",
        "amount": 1000,
        "current_portfolio": {"cash": 10_000, "positions": {"BTC-USD": 0.1}},
    }


def _with(path: str, value: Any) -> dict[str, Any]:
    body = _valid()
    *parents, leaf = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    target[leaf] = value
    return body


CASES = [
    ("amount zero", _with("amount", 0), "amount"),
    ("amount negative", _with("amount", -5), "amount"),
    ("unknown side", _with("side", "short"), "side"),
    ("malformed symbol", _with("symbol", "btc-usd"), "symbol"),
    ("negative cash", _with("current_portfolio.cash", -1), "current_portfolio.cash"),
    (
        "negative quantity",
        _with("current_portfolio.positions", {"ETH-USD": -2}),
        "current_portfolio.positions.ETH-USD",
    ),
    (
        "malformed held symbol",
        _with("current_portfolio.positions", {"eth": 1}),
        "current_portfolio.positions.eth.[key]",
    ),
    ("non-dollar quote", _with("symbol", "ETH-BTC"), "symbol"),
    (
        "non-dollar held quote",
        _with("current_portfolio.positions", {"ETH-BTC": 1}),
        "current_portfolio.positions.ETH-BTC.[key]",
    ),
    ("unknown field", {**_valid(), "leverage": 3}, "leverage"),
    ("misspelt positions", _with("current_portfolio.position", {}), "current_portfolio.position"),
    ("missing portfolio", {k: v for k, v in _valid().items() if k != "current_portfolio"},
     "current_portfolio"),
    ("amount as boolean", _with("amount", True), "amount"),
    ("amount as string", _with("amount", "1000"), "amount"),
    ("cash as string", _with("current_portfolio.cash", "10"), "current_portfolio.cash"),
    ("amount beyond any order", _with("amount", 1e13), "amount"),
    ("cash that overflows", _with("current_portfolio.cash", 1e308), "current_portfolio.cash"),
    (
        "quantity that overflows",
        _with("current_portfolio.positions", {"BTC-USD": 1e308}),
        "current_portfolio.positions.BTC-USD",
    ),
    (
        "too many held symbols",
        _with("current_portfolio.positions", {f"A{i:03d}-USD": 1 for i in range(101)}),
        "current_portfolio.positions",
    ),
]  # fmt: skip


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The app in process, its lifespan run by hand, upstreams at closed ports."""
    closed = f"http://127.0.0.1:{free_port()}"
    settings = Settings(market_data_source="simulated", market_data_url=closed, regime_url=closed)
    app = create_app(settings)
    async with asgi_client(app, "http://risk") as http:
        yield http


@pytest.mark.parametrize(("name", "body", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, name: str, body: dict[str, Any], field: str
) -> None:
    """Each malformed request is refused with a problem that names its field."""
    response = await client.post("/api/v1/approve-trade", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_finite_numbers_are_refused(client: httpx.AsyncClient, raw: str) -> None:
    """NaN and infinities (which Python's JSON parser accepts) are a 422: not JSON."""
    body = '"symbol": "BTC-USD", "side": "buy", "current_portfolio": {"cash": 10}'
    text = "{" + body + ', "amount": ' + raw + "}"
    response = await client.post(
        "/api/v1/approve-trade", content=text, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert [e["type"] for e in response.json()["errors"]] == ["json_invalid"]


async def test_answer_is_the_documented_response(client: httpx.AsyncClient) -> None:
    """The route's own serialisation is an ApproveTradeResponse, and OpenAPI still says so."""
    response = await client.post("/api/v1/approve-trade", json=_valid())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = ApproveTradeResponse.model_validate_json(response.content)
    assert answer.price_source == "simulated"  # the gateway is down: the direct source
    schema = (await client.get("/openapi.json")).json()
    ok = schema["paths"]["/api/v1/approve-trade"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/ApproveTradeResponse")
    body = schema["paths"]["/api/v1/approve-trade"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"].endswith("/ApproveTradeRequest")
    request_schema = schema["components"]["schemas"]["ApproveTradeRequest"]
    assert {"symbol", "side", "amount", "current_portfolio"} <= set(request_schema["properties"])
