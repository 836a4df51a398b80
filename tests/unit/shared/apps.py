"""A `build_app` app around test routes, and an in-process client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from shared.app import build_app
from shared.health import Dependency


@asynccontextmanager
async def no_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


def app_with(
    *routers: APIRouter,
    dependencies: Callable[[FastAPI], list[Dependency]] = lambda app: [],
    **options: Any,
) -> FastAPI:
    """The service app factory's app with `routers`, no lifespan, the given health checks."""
    return build_app(
        service="test",
        title="t",
        description="t",
        lifespan=no_lifespan,
        routers=list(routers),
        dependencies=dependencies,
        **options,
    )


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling `app` in process (its lifespan is not run)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
