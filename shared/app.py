"""The app factory every service uses: middleware, error handlers, routers, in that order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from shared.bodylimit import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from shared.docs import install_docs
from shared.health import Dependency, health_router
from shared.metrics import AppMetrics, metrics_router
from shared.openapi import install_openapi
from shared.problems import UnhandledErrorMiddleware, install_problem_handlers
from shared.settings import CommonSettings
from shared.tracing import Telemetry, TraceMiddleware

VERSION = "1.0.0"


def build_app(
    *,
    service: str,
    settings: CommonSettings | None = None,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]],
    routers: Sequence[APIRouter],
    dependencies: Callable[[FastAPI], list[Dependency]],
    metrics: AppMetrics | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """A FastAPI app with tracing, problem+json errors, `/health` and the given routers.

    `dependencies(app)` lists the health checks; it is called per `/health` request, so
    it can read clients the lifespan put on `app.state`. A request body over
    `max_body_bytes` is a 413 problem before the app reads it.

    `service` is the compose name, the traces' `service.name`. `/metrics` serves
    `metrics` (the app's own registry; the lifespan adds the service's families to it).
    With `settings.observability` off, requests are neither counted nor spanned.
    """
    settings = settings or CommonSettings()
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
        docs_url=None,  # served by `install_docs`, from the repository rather than a CDN
        redoc_url=None,
    )
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
    app.include_router(health_router(lambda: dependencies(app), version=VERSION))
    app.include_router(metrics_router(metrics))
    for router in routers:
        app.include_router(router)
    install_openapi(app)
    install_docs(app)
    return app
