"""The app factory every service uses: middleware, error handlers, routers, in that order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import SecretStr

from shared.auth import load_keyring
from shared.bodylimit import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from shared.health import Dependency, health_router
from shared.openapi import install_openapi
from shared.problems import UnhandledErrorMiddleware, install_problem_handlers
from shared.tracing import TraceMiddleware

VERSION = "1.0.0"


def build_app(
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]],
    routers: Sequence[APIRouter],
    dependencies: Callable[[FastAPI], list[Dependency]],
    api_keys: SecretStr,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """A FastAPI app with tracing, problem+json errors, `/health` and the given routers.

    `dependencies(app)` lists the health checks; it is called per `/health` request, so
    it can read clients the lifespan put on `app.state`. A request body over
    `max_body_bytes` is a 413 problem before the app reads it. `api_keys` (`API_KEYS`)
    are the keys `shared.auth` accepts; none is an error (the service fails closed).
    """
    keyring = load_keyring(api_keys.get_secret_value())
    app = FastAPI(title=title, description=description, version=VERSION, lifespan=lifespan)
    app.state.keyring = keyring
    # Added innermost first: the trace ID is bound before the catch-all 500 handler runs.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(TraceMiddleware)
    install_problem_handlers(app)
    app.include_router(health_router(lambda: dependencies(app), version=VERSION))
    for router in routers:
        app.include_router(router)
    install_openapi(app)
    return app
