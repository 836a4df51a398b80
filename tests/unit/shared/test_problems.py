"""Every error becomes RFC 9457 problem+json with the request's trace ID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, Field

from shared.errors import (
    CircuitOpenError,
    ConflictError,
    DomainError,
    NotFoundError,
    ServiceUnavailableError,
    UpstreamClientError,
)
from shared.problems import PROBLEM_JSON
from shared.tracing import TRACE_HEADER
from tests.unit.shared.apps import app_with, client_of

MEMBERS = {"type", "title", "status", "detail", "instance", "trace_id"}


class Order(BaseModel):
    symbol: str = Field(pattern=r"^[A-Z]+-[A-Z]+$")
    amount: float = Field(gt=0)


def make_app() -> FastAPI:
    router = APIRouter()

    @router.get("/missing")
    async def missing() -> None:
        """Raise a 404 domain error."""
        raise NotFoundError("order 42 does not exist")

    @router.get("/conflict")
    async def conflict() -> None:
        """Raise a 409 domain error."""
        raise ConflictError("key reused with another body")

    @router.get("/down")
    async def down() -> None:
        """Raise a 503 with a retry hint."""
        raise ServiceUnavailableError("risk_management", "risk is down", retry_after=2.4)

    @router.get("/open")
    async def circuit_open() -> None:
        """Raise a breaker refusal."""
        raise CircuitOpenError("regime_detection", "breaker open", retry_after=0.2)

    @router.get("/upstream-4xx")
    async def upstream_4xx() -> None:
        """Raise an upstream 4xx."""
        raise UpstreamClientError("market_data", 404, "unknown symbol")

    @router.get("/clashing-extra")
    async def clashing_extra() -> None:
        """Raise an error whose extra members clash with the standard ones."""
        raise DomainError("boom", extra={"status": 999, "headers": "x", "hint": "kept"})

    @router.post("/orders")
    async def orders(order: Order, limit: Annotated[int, Query(ge=1, le=10)] = 5) -> Order:
        """Validate a body and a query parameter."""
        return order

    @router.get("/crash")
    async def crash() -> None:
        """Fail unexpectedly with a secret in the message."""
        raise RuntimeError("secret-password-in-message")

    return app_with(router)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(make_app()) as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body.keys() >= MEMBERS
    assert body["status"] == status
    assert body["trace_id"] == response.headers[TRACE_HEADER]
    return body


async def test_not_found_domain_error(client: httpx.AsyncClient) -> None:
    """NotFoundError is a 404 problem with detail, instance and the caller's trace ID."""
    response = await client.get(
        "/missing", headers={TRACE_HEADER: "4040404040404040404040404040404a"}
    )
    body = problem(response, 404)
    assert body["title"] == "Not Found"
    assert body["type"] == "about:blank"
    assert body["detail"] == "order 42 does not exist"
    assert body["instance"] == "/missing"
    assert body["trace_id"] == "4040404040404040404040404040404a"


async def test_conflict_domain_error(client: httpx.AsyncClient) -> None:
    """ConflictError is a 409 problem."""
    assert problem(await client.get("/conflict"), 409)["title"] == "Conflict"


async def test_service_unavailable_has_retry_after(client: httpx.AsyncClient) -> None:
    """ServiceUnavailableError is a 503 problem naming the service, with Retry-After rounded."""
    response = await client.get("/down")
    body = problem(response, 503)
    assert response.headers["Retry-After"] == "2"
    assert body["service"] == "risk_management"
    assert body["detail"] == "risk is down"


async def test_circuit_open_retry_after_at_least_one(client: httpx.AsyncClient) -> None:
    """A breaker refusal is a 503 whose Retry-After is never below one second."""
    response = await client.get("/open")
    problem(response, 503)
    assert response.headers["Retry-After"] == "1"


async def test_upstream_4xx_is_bad_gateway(client: httpx.AsyncClient) -> None:
    """An upstream 4xx becomes a 502 problem carrying the upstream status."""
    body = problem(await client.get("/upstream-4xx"), 502)
    assert body["upstream_status"] == 404
    assert body["service"] == "market_data"


async def test_extra_cannot_override_standard_members(client: httpx.AsyncClient) -> None:
    """An error's extra members never replace status/headers; the rest are kept."""
    body = problem(await client.get("/clashing-extra"), 500)
    assert body["detail"] == "boom"
    assert body["hint"] == "kept"


async def test_validation_error_lists_fields(client: httpx.AsyncClient) -> None:
    """Invalid body and query fields give a 422 problem listing each offending field."""
    response = await client.post("/orders?limit=50", json={"symbol": "btc", "amount": -1})
    body = problem(response, 422)
    fields = {(e["location"], e["field"]) for e in body["errors"]}
    assert fields == {("body", "symbol"), ("body", "amount"), ("query", "limit")}
    assert all(e["message"] and e["type"] for e in body["errors"])
    assert "amount" in body["detail"]
    assert "symbol" in body["detail"]


async def test_malformed_json_body_is_422(client: httpx.AsyncClient) -> None:
    """A body that is not JSON is a 422 problem, never a 500."""
    response = await client.post(
        "/orders", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert problem(response, 422)["errors"]


async def test_malformed_json_names_the_body_not_an_offset(client: httpx.AsyncClient) -> None:
    """A JSON syntax error is reported on the field `body` with the offset in the message."""
    response = await client.post(
        "/orders", content=b'{"symbol":', headers={"content-type": "application/json"}
    )
    body = problem(response, 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("body", "body")]
    assert body["detail"] == "Invalid request: body"
    assert "at character 10" in body["errors"][0]["message"]


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    """Starlette's own 404 is a problem+json too."""
    assert problem(await client.get("/nowhere"), 404)["instance"] == "/nowhere"


async def test_unhandled_exception_is_500_without_trace(client: httpx.AsyncClient) -> None:
    """An unexpected exception is a 500 problem with the trace ID and no stack trace."""
    response = await client.get(
        "/crash", headers={TRACE_HEADER: "c0ffee00c0ffee00c0ffee00c0ffee01"}
    )
    body = problem(response, 500)
    assert body["trace_id"] == "c0ffee00c0ffee00c0ffee00c0ffee01"
    assert response.headers[TRACE_HEADER] == "c0ffee00c0ffee00c0ffee00c0ffee01"
    for leak in ("Traceback", "secret-password", "RuntimeError", 'File "'):
        assert leak not in response.text


async def test_a_long_path_is_not_echoed_whole(client: httpx.AsyncClient) -> None:
    """A 404 for a 10 KB path names at most 256 characters of it in `instance`."""
    long_id = "x" * 10_000
    response = await client.get(f"/orders/{long_id}")
    assert response.status_code == 404
    assert len(response.text) < 1000
    assert response.json()["instance"] == ("/orders/" + long_id)[:256] + "..."
