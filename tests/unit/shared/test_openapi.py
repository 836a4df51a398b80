"""The served OpenAPI document: declared bodies and problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel

from shared.bodies import JsonRoute
from shared.errors import NotFoundError
from shared.problems import PROBLEM_JSON, Problem
from tests.unit.shared.apps import app_with, client_of
from tests.unit.shared.test_bodies import Order

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


class Report(BaseModel):
    ok: bool


def make_app() -> FastAPI:
    router = APIRouter(route_class=JsonRoute)

    @router.post("/orders")
    async def orders(order: Order) -> dict[str, Any]:
        """A declared body."""
        return order.model_dump()

    @router.get("/items", responses={404: {"description": "No such item"}})
    async def items(limit: Annotated[int, Query(ge=1)] = 5) -> dict[str, int]:
        """A declared query parameter (FastAPI's own 422) and a documented 404."""
        raise NotFoundError(f"no items (limit {limit})")

    @router.get("/report", responses={503: {"model": Report, "description": "Own body"}})
    async def report() -> Report:
        """An error response with a schema of its own."""
        return Report(ok=True)

    return app_with(router)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(make_app()) as client:
        yield client


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_the_body_is_documented_with_its_nested_models(document: dict[str, Any]) -> None:
    """The operation's body names the model, defined in components with what it nests."""
    body = document["paths"]["/orders"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Order"}
    schemas = document["components"]["schemas"]
    assert schemas["Order"]["properties"]["wallet"] == {"$ref": "#/components/schemas/Wallet"}
    assert set(schemas["Order"]["required"]) == {"symbol", "amount", "wallet"}
    assert "cash" in schemas["Wallet"]["properties"]


def test_errors_are_documented_as_problems(document: dict[str, Any]) -> None:
    """422s and declared 4xx answers are problem+json `Problem`s, not HTTPValidationError;
    a response with a schema of its own keeps it."""
    paths = document["paths"]
    for path, method, status in [
        ("/orders", "post", "422"),
        ("/items", "get", "422"),
        ("/items", "get", "404"),
    ]:
        content = paths[path][method]["responses"][status]["content"]
        assert content == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, (path, status)
    own = paths["/report"]["get"]["responses"]["503"]["content"]
    assert own["application/json"]["schema"] == {"$ref": "#/components/schemas/Report"}
    schemas = document["components"]["schemas"]
    assert {"type", "title", "status", "detail", "instance", "trace_id"} <= set(
        schemas["Problem"]["properties"]
    )
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert all(ref.removeprefix("#/components/schemas/") in schemas for ref in _refs(document))


async def test_the_problems_sent_match_the_documented_schema(client: httpx.AsyncClient) -> None:
    """What the services answer on errors validates as the documented `Problem`."""
    for response in (
        await client.get("/items", params={"limit": 0}),
        await client.post("/orders", json={"symbol": "btc"}),
        await client.get("/items"),
    ):
        assert response.status_code in {404, 422}
        problem = Problem.model_validate(response.json())
        assert problem.status == response.status_code
        assert (problem.errors is not None) == (response.status_code == 422)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
