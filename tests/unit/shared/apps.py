"""A `build_app` app around test routes, and an in-process client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from shared.app import build_app
from shared.health import Dependency
from shared.settings import CommonSettings
from tests.support import keys


@asynccontextmanager
async def no_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


def app_with(
    *routers: APIRouter,
    dependencies: Callable[[FastAPI], list[Dependency]] = lambda app: [],
    api_keys: str | None = None,
    **options: Any,
) -> FastAPI:
    """The service app factory's app with `routers`, no lifespan, the given health checks.

    It accepts the tests' keys (`tests.support.keys`, in the environment), or `api_keys`.
    """
    if api_keys is not None:
        options["settings"] = CommonSettings(api_keys=api_keys)
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
async def client_of(
    app: FastAPI, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling `app` in process (its lifespan is not run).

    It sends the admin key unless `headers` say otherwise (`{}`: no key).
    """
    transport = httpx.ASGITransport(app=app)
    sent = keys.headers() if headers is None else headers
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=sent
    ) as client:
        yield client
