"""Bodies read by `read_body`: the same 422 problems as a declared body, and documented."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from shared.bodies import json_body, read_body
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
    router = APIRouter()

    @router.post("/orders", openapi_extra=json_body(Order))
    async def orders(request: Request) -> dict[str, Any]:
        """Echo the order read by `read_body`."""
        return (await read_body(request, Order)).model_dump()

    @router.post("/declared")
    async def declared(order: Order) -> dict[str, Any]:
        """The same model declared the FastAPI way, for comparison."""
        return order.model_dump()

    return app_with(router)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(make_app()) as client:
        yield client


GOOD = {"symbol": "BTC-USD", "amount": 5.0, "wallet": {"cash": 10.0}}


async def test_a_valid_body_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders", json=GOOD)
    assert response.status_code == 200
    assert response.json() == GOOD


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({**GOOD, "symbol": "btc", "amount": -1}, {"symbol", "amount"}),
        ({**GOOD, "wallet": {"cash": -1}}, {"wallet.cash"}),
        ({**GOOD, "extra": 1}, {"extra"}),
        ({"symbol": "BTC-USD"}, {"amount", "wallet"}),
        ([1, 2], {"body"}),
    ],
)
async def test_invalid_bodies_are_the_same_422_as_declared_ones(
    client: httpx.AsyncClient, body: Any, fields: set[str]
) -> None:
    """Each offending field is listed under "body", exactly as for a declared body."""
    answers = [await client.post(path, json=body) for path in ("/orders", "/declared")]
    found = []
    for response in answers:
        assert response.status_code == 422
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        errors = response.json()["errors"]
        assert all(e["message"] and e["type"] for e in errors)
        found.append(sorted((e["location"], e["field"]) for e in errors))
    assert {field for _, field in found[0]} == fields
    assert found[0] == found[1]


@pytest.mark.parametrize("raw", [b'{"symbol":', b"", b"not json"])
async def test_malformed_json_is_a_422_on_the_body(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/orders", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    body = response.json()
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("body", "body")]
    assert body["detail"] == "Invalid request: body"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_body_not_declared_json_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    """Only JSON is read: a form or text/plain post (which a browser sends to another
    site without asking) is refused before the body is looked at."""
    headers = {} if content_type is None else {"content-type": content_type}
    response = await client.post("/orders", content=orjson.dumps(GOOD), headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "application/json" in response.json()["detail"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.x+json"]
)
async def test_json_media_types_are_read(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(
        "/orders", content=orjson.dumps(GOOD), headers={"content-type": content_type}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b'{"symbol":"BTC-USD","amount":5,"amount":500,"wallet":{"cash":1}}',
        b'{"symbol":"BTC-USD","amount":5,"wallet":{"cash":1,"cash":1e9}}',
    ],
)
async def test_a_repeated_key_is_a_422_not_last_one_wins(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    """A JSON object with a key twice, at any depth, is a 422 naming the key."""
    headers = {"Content-Type": "application/json"}
    response = await client.post("/orders", content=raw, headers=headers)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "body"
    assert error["type"] == "json_invalid"
    assert "duplicate key" in error["message"]


async def test_the_same_key_in_two_objects_is_fine(client: httpx.AsyncClient) -> None:
    """A key may appear once in each of several objects; only a repeat within one is refused."""
    raw = b'{"symbol":"BTC-USD","amount":5,"wallet":{"cash":1,"symbol":"ETH-USD"}}'
    response = await client.post(
        "/orders", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["symbol"] == "BTC-USD"
