"""Declared bodies on a `JsonRoute` router: decoded by `decode_json`, errors as 422 problems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from shared.bodies import JsonRoute
from shared.problems import PROBLEM_JSON
from tests.unit.shared.apps import app_with, client_of


class Wallet(BaseModel):
    cash: float = Field(ge=0)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(pattern=r"^[A-Z]+-[A-Z]+$")
    amount: float = Field(gt=0)
    wallet: Wallet


def make_app() -> FastAPI:
    router = APIRouter(route_class=JsonRoute)

    @router.post("/orders")
    async def orders(order: Order) -> dict[str, Any]:
        """Echo the order."""
        return order.model_dump()

    @router.get("/plain")
    async def plain() -> dict[str, bool]:
        """A route without a body."""
        return {"ok": True}

    return app_with(router)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(make_app()) as client:
        yield client


JSON = "application/json"
GOOD = {"symbol": "BTC-USD", "amount": 5, "wallet": {"cash": 10}}


async def test_a_valid_body_is_read(client: httpx.AsyncClient) -> None:
    """A valid JSON body reaches the route as the model."""
    response = await client.post("/orders", json=GOOD)
    assert response.status_code == 200
    assert response.json() == {"symbol": "BTC-USD", "amount": 5.0, "wallet": {"cash": 10.0}}
    assert (await client.get("/plain")).json() == {"ok": True}


async def test_bodies_are_decoded_by_decode_json(client: httpx.AsyncClient) -> None:
    """`Infinity` is not JSON: refused as malformed (the standard library would accept it)."""
    raw = b'{"symbol": "BTC-USD", "amount": 5, "wallet": {"cash": Infinity}}'
    response = await client.post(
        "/orders", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_invalid_fields_are_422_problems_naming_them(client: httpx.AsyncClient) -> None:
    """A nested invalid field is named with its path."""
    response = await client.post("/orders", json={**GOOD, "wallet": {"cash": -1}})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["wallet.cash"]


async def test_a_body_not_declared_json_is_refused(client: httpx.AsyncClient) -> None:
    """JSON sent as text/plain (a form a web page could post) is not read: 422."""
    response = await client.post(
        "/orders", content=b'{"symbol": "BTC-USD"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "raw",
    [
        b'{"symbol":"BTC-USD","amount":5,"amount":500,"wallet":{"cash":1}}',
        b'{"symbol":"BTC-USD","amount":5,"wallet":{"cash":1,"cash":1e9}}',
        b'{"symbol":"BTC-USD","amount":5,"\\u0061mount":500,"wallet":{"cash":1}}',
    ],
)
async def test_a_repeated_key_is_a_422_not_last_one_wins(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    """A JSON object with a key twice (at any depth, however escaped) is a 422 naming it."""
    response = await client.post("/orders", content=raw, headers={"content-type": JSON})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["type"] == "json_invalid"
    assert "duplicate key" in error["message"]


async def test_the_same_key_in_two_objects_is_fine(client: httpx.AsyncClient) -> None:
    """A key may appear once in each of several objects; only a repeat within one is refused."""
    raw = b'{"symbol":"BTC-USD","amount":5,"wallet":{"cash":1,"amount":7}}'
    response = await client.post("/orders", content=raw, headers={"content-type": JSON})
    assert response.status_code == 200, response.text
    assert response.json()["amount"] == 5.0
