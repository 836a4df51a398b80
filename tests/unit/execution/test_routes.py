"""Request validation, the order history and its paging, health, through the HTTP API."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.unit.execution.stubs import RiskStub

GOOD = {"symbol": "BTC-USD", "side": "buy", "amount": 100}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (GOOD | {"symbol": "btc-usd"}, "symbol"),
        (GOOD | {"symbol": "BTCUSD"}, "symbol"),
        (GOOD | {"side": "short"}, "side"),
        (GOOD | {"amount": 0}, "amount"),
        (GOOD | {"amount": -5}, "amount"),
        (GOOD | {"amount": "lots"}, "amount"),
        (GOOD | {"amount": "1000"}, "amount"),
        (GOOD | {"amount": True}, "amount"),
        (GOOD | {"symbol": "BTC-EUR"}, "symbol"),
        (GOOD | {"quantity": 1}, "quantity"),
        ({"symbol": "BTC-USD", "side": "buy"}, "amount"),
    ],
)
async def test_invalid_trades_are_422_naming_the_field(
    client: httpx.AsyncClient, risk: RiskStub, body: dict[str, Any], field: str
) -> None:
    """Bad input is a 422 problem naming the field, before Risk is asked."""
    response = await client.post("/api/v1/trade", json=body)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}
    assert risk.requests == []


async def test_openapi_documents_the_trade_body(client: httpx.AsyncClient) -> None:
    """The trade's body is documented as `TradeRequest`, with the Idempotency-Key header."""
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/trade"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/TradeRequest"}
    assert set(document["components"]["schemas"]["TradeRequest"]["properties"]) == {
        "symbol",
        "side",
        "amount",
    }
    assert "idempotency-key" in {p["name"] for p in operation["parameters"]}


async def test_malformed_idempotency_key_is_422(client: httpx.AsyncClient) -> None:
    """An Idempotency-Key that is too long or has spaces is refused."""
    for key in ("x" * 256, "has space"):
        response = await client.post("/api/v1/trade", json=GOOD, headers={"Idempotency-Key": key})
        assert response.status_code == 422


async def test_orders_page_newest_first_with_a_cursor(client: httpx.AsyncClient) -> None:
    """Five orders in pages of two: newest first, every order once, then no cursor."""
    placed = [
        (await client.post("/api/v1/trade", json=GOOD | {"amount": 10 + i})).json()["order_id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/orders", params=params)).json()
        seen += [o["order_id"] for o in page["orders"]]
        cursor = page["next_cursor"]
    assert seen == placed[::-1]
    assert cursor is None


async def test_bad_cursor_and_limit_are_422(client: httpx.AsyncClient) -> None:
    """A cursor this service did not issue, or a limit out of range, is a 422."""
    assert (await client.get("/api/v1/orders", params={"cursor": "bogus!"})).status_code == 422
    assert (await client.get("/api/v1/orders", params={"limit": 0})).status_code == 422
    assert (await client.get("/api/v1/orders", params={"limit": 501})).status_code == 422
    # A well-formed cursor whose number no database integer can hold.
    huge = base64.urlsafe_b64encode(b"seq:" + b"9" * 23).decode().rstrip("=")
    response = await client.get("/api/v1/orders", params={"cursor": huge})
    assert response.status_code == 422


async def test_unknown_order_is_a_404_problem(client: httpx.AsyncClient) -> None:
    """Asking for an order that does not exist is a 404 problem."""
    response = await client.get("/api/v1/orders/no-such-order")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_health_reports_the_database_and_upstreams(client: httpx.AsyncClient) -> None:
    """`/health` is healthy with the ledger reachable and names each dependency."""
    body = (await client.get("/health")).json()
    assert body["status"] == "healthy"
    assert set(body["dependencies"]) == {
        "database",
        "risk_management",
        "market_data",
        "market_source",
    }


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of("seq: 5"),
        cursor_of("seq:+5"),
        cursor_of("seq:5_0"),
        cursor_of("seq:\u0665"),  # Arabic-Indic five
        cursor_of("seq:05"),
        cursor_of("seq:5 "),
        cursor_of("seq:5") + "==",
        cursor_of("seq:5") + "!",
        cursor_of("SEQ:5"),
    ],
)
async def test_cursors_are_parsed_strictly(client: httpx.AsyncClient, cursor: str) -> None:
    """Only the exact cursor text the service issues is accepted; near misses are 422."""
    response = await client.get("/api/v1/orders", params={"cursor": cursor})
    assert response.status_code == 422, cursor
    assert response.json()["detail"] == "cursor: not a cursor this service issued"
    ok = await client.get("/api/v1/orders", params={"cursor": cursor_of("seq:5")})
    assert ok.status_code == 200


async def test_a_404_does_not_echo_the_id(client: httpx.AsyncClient) -> None:
    """An unknown 10 KB order id is a small 404: neither detail nor instance repeats it."""
    long_id = "7" * 10_000
    response = await client.get(f"/api/v1/orders/{long_id}")
    assert response.status_code == 404
    assert len(response.content) < 1000
    assert response.json()["detail"] == "No order with this id"
