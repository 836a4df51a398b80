"""A `build_app` app around test routes, and an in-process client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from shared.app import AppState, build_app
from shared.health import Dependency
from tests.support.asgi import asgi_client


def app_with(
    *routers: APIRouter, health_checks: Sequence[Dependency] = (), **options: Any
) -> FastAPI:
    """The service app factory's app with `routers` and a lifespan yielding `health_checks`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        yield {"health_checks": list(health_checks)}

    return build_app(
        service="test",
        title="t",
        description="t",
        lifespan=lifespan,
        routers=list(routers),
        **options,
    )


def client_of(app: FastAPI) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """An httpx client calling `app` in process, its lifespan run."""
    return asgi_client(app)
