"""A `build_app` app around test routes, and an in-process client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from shared.app import AppState, build_app
from shared.health import Dependency
from shared.settings import CommonSettings
from tests.support.asgi import asgi_client


def app_with(
    *routers: APIRouter,
    health_checks: Sequence[Dependency] = (),
    api_keys: str | None = None,
    **options: Any,
) -> FastAPI:
    """The service app factory's app with `routers` and a lifespan yielding `health_checks`.

    It accepts the tests' keys (`tests.support.keys`, in the environment), or `api_keys`.
    """
    if api_keys is not None:
        options["settings"] = CommonSettings(api_keys=api_keys)

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


def client_of(
    app: FastAPI, headers: dict[str, str] | None = None
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """An httpx client calling `app` in process, its lifespan run.

    It sends the tests' admin key unless `headers` say otherwise (`{}`: no key).
    """
    return asgi_client(app, headers=headers)
