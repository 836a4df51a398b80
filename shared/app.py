"""The app factory every service uses, and the typed lifespan state its routes read.

The pattern, the same in all four services (see the README's layout section):

- `app.py`: `create_app(settings=None, *, transport=None, market_source=None, clock=...)`
  builds the app with `build_app`; its lifespan opens every long-lived resource and
  yields the service's `State` (a `TypedDict` extending `AppState`).
- `deps.py`: the `State` class, one async getter per resource and its `Annotated` alias
  (`LedgerDep = Annotated[Ledger, Depends(get_ledger)]`).
- `routes.py`: each route declares what it uses by those aliases; no route touches
  `request.app.state`.

Starlette hands the yielded state to every request as the ASGI scope's `state` (a
shallow copy per request); `lifespan_state` reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypedDict

from fastapi import APIRouter, FastAPI
from starlette.requests import HTTPConnection

from shared.auth import load_keyring
from shared.bodylimit import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from shared.docs import install_docs
from shared.health import Dependency, health_router
from shared.metrics import AppMetrics, metrics_router
from shared.openapi import install_openapi
from shared.problems import UnhandledErrorMiddleware, install_problem_handlers
from shared.settings import CommonSettings
from shared.tracing import Telemetry, TraceMiddleware

VERSION = "1.0.0"


class AppState(TypedDict):
    """What every service's lifespan yields at least: the checks `/health` runs."""

    health_checks: list[Dependency]


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def lifespan_state(connection: HTTPConnection) -> Mapping[str, Any]:
    """The state the app's lifespan yielded, as this request sees it (empty without one).

    A service's `deps.py` narrows it to its own `State`:
    `cast(State, lifespan_state(request))`.
    """
    state: Mapping[str, Any] = connection.scope.get("state", {})
    return state


def build_app(
    *,
    service: str,
    settings: CommonSettings | None = None,
    title: str,
    description: str,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    metrics: AppMetrics | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """A FastAPI app with tracing, problem+json errors, `/health` and the given routers.

    `/health` runs the `health_checks` the lifespan yielded. A request body over
    `max_body_bytes` is a 413 problem before the app reads it. `settings.api_keys`
    (`API_KEYS`) are the keys `shared.auth` accepts; none is an error (the service fails
    closed, see `shared.auth.load_keyring`).

    `service` is the compose name, the traces' `service.name`. `/metrics` serves
    `metrics` (the app's own registry; the lifespan adds the service's families to it).
    With `settings.observability` off, requests are neither counted nor spanned.
    """
    settings = settings or CommonSettings()
    keyring = load_keyring(settings.api_keys.get_secret_value())
    metrics = metrics or AppMetrics()
    # Empty (compose's `${OTEL_EXPORTER_OTLP_ENDPOINT:-}` when unset) means unset.
    telemetry = Telemetry(service, settings.otel_exporter_otlp_endpoint or None)

    @asynccontextmanager
    async def traced(app: FastAPI) -> AsyncIterator[Any]:
        telemetry.start()
        try:
            async with lifespan(app) as state:
                yield state
        finally:
            telemetry.shutdown()

    app = FastAPI(
        title=title,
        description=description,
        version=VERSION,
        lifespan=traced,
        # The spans and metrics are `TraceMiddleware`'s; FastAPI's own OpenTelemetry
        # would be a second set, and its check for a global provider runs per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served by `install_docs`, from the repository rather than a CDN
        redoc_url=None,
    )
    app.state.keyring = keyring
    # Added innermost first: the trace ID is bound before the catch-all 500 handler runs.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    observed = settings.observability
    app.add_middleware(
        TraceMiddleware,
        telemetry=telemetry if observed else None,
        metrics=metrics if observed else None,
    )
    install_problem_handlers(app)
    # FastAPI tries the routers in this order and nearly every request is the service's
    # own: /health and /metrics after them (5% of a trade's instructions, measured).
    for router in routers:
        app.include_router(router)
    app.include_router(health_router(version=VERSION))
    app.include_router(metrics_router(metrics))
    install_openapi(app)
    install_docs(app)
    return app
