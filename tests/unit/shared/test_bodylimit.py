"""Request bodies over the bound are a 413 problem; bodies within it reach the app intact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from shared.problems import PROBLEM_JSON
from shared.tracing import TRACE_HEADER
from tests.unit.shared.apps import app_with, client_of

LIMIT = 1000


def make_app() -> FastAPI:
    router = APIRouter()

    @router.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        """Say how many bytes arrived."""
        return {"received": len(await request.body())}

    return app_with(router, max_body_bytes=LIMIT)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(make_app()) as client:
        yield client


async def chunks(total: int, size: int = 300) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 413
    assert body["trace_id"] == response.headers[TRACE_HEADER]
    assert str(LIMIT) in body["detail"]


async def test_declared_length_over_the_bound_is_413(client: httpx.AsyncClient) -> None:
    """A Content-Length over the bound is refused with a 413 problem carrying the trace ID."""
    assert_413(await client.post("/echo", content=b"x" * (LIMIT + 1)))


async def test_chunked_body_over_the_bound_is_413(client: httpx.AsyncClient) -> None:
    """A chunked body (no length) is cut off as soon as it passes the bound."""
    assert_413(await client.post("/echo", content=chunks(LIMIT * 5)))


@pytest.mark.parametrize("streamed", [False, True])
async def test_body_within_the_bound_arrives_whole(
    client: httpx.AsyncClient, streamed: bool
) -> None:
    """A body of exactly the bound reaches the handler byte for byte, streamed or not."""
    content = chunks(LIMIT) if streamed else b"x" * LIMIT
    response = await client.post("/echo", content=content)
    assert response.status_code == 200
    assert response.json() == {"received": LIMIT}
