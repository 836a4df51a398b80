"""`GET /health`: aggregation of named, time-bounded dependency checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.app import VERSION, AppState
from shared.breaker import CircuitBreaker
from shared.health import (
    CheckFn,
    CheckResult,
    Dependency,
    DependencyStatus,
    breaker_check,
    health_router,
)
from tests.unit.shared.apps import app_with, client_of
from tests.unit.shared.fakes import FakeClock


def fixed(status: DependencyStatus) -> CheckFn:
    async def check() -> DependencyStatus:
        return status

    return check


async def raising() -> CheckResult:
    raise ConnectionError("redis refused")


async def hanging() -> CheckResult:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def get_health(app: FastAPI) -> httpx.Response:
    async with client_of(app) as client:
        return await client.get("/health")


def health_app(deps: list[Dependency], **options: Any) -> FastAPI:
    """A bare app with only `health_router(**options)`, its lifespan yielding `deps`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        yield {"health_checks": deps}

    app = FastAPI(lifespan=lifespan)
    app.include_router(health_router(**options))
    return app


async def health_of(*deps: Dependency) -> tuple[int, dict[str, Any]]:
    response = await get_health(app_with(health_checks=deps))
    return response.status_code, response.json()


async def test_no_dependencies_is_healthy() -> None:
    """A service without dependencies is healthy, with uptime and version."""
    status, body = await health_of()
    assert status == 200
    assert body["status"] == "healthy"
    assert body["dependencies"] == {}
    assert body["version"] == VERSION
    assert body["uptime"] >= 0


async def test_all_healthy() -> None:
    """All checks healthy (plain status or CheckResult) → healthy, each named."""

    async def detailed() -> CheckResult:
        return CheckResult("healthy", {"latency_ms": 1})

    status, body = await health_of(
        Dependency("redis", fixed("healthy"), critical=True), Dependency("db", detailed)
    )
    assert (status, body["status"]) == (200, "healthy")
    assert body["dependencies"] == {"redis": "healthy", "db": "healthy"}
    assert body["details"] == {"db": {"latency_ms": 1}}


@pytest.mark.parametrize(
    ("deps", "expected"),
    [
        ([Dependency("cache", fixed("degraded"))], (200, "degraded")),
        ([Dependency("cache", fixed("unhealthy"))], (200, "degraded")),
        ([Dependency("db", fixed("degraded"), critical=True)], (200, "degraded")),
        ([Dependency("db", fixed("unhealthy"), critical=True)], (503, "unhealthy")),
        (
            [Dependency("db", fixed("healthy"), critical=True), Dependency("x", raising)],
            (200, "degraded"),
        ),
        ([Dependency("db", raising, critical=True)], (503, "unhealthy")),
    ],
)
async def test_aggregation(deps: list[Dependency], expected: tuple[int, str]) -> None:
    """Unhealthy only when a critical dependency is; degraded when anything is not healthy."""
    status, body = await health_of(*deps)
    assert (status, body["status"]) == expected


async def test_raising_check_is_unhealthy_with_reason() -> None:
    """A check that raises counts as unhealthy and says why."""
    _, body = await health_of(Dependency("redis", raising))
    assert body["dependencies"]["redis"] == "unhealthy"
    assert body["details"]["redis"]["error"] == "ConnectionError: redis refused"


async def test_slow_check_is_cut_at_its_time_bound() -> None:
    """A check that runs past the time bound is unhealthy; the others still report."""
    deps = [Dependency("slow", hanging, critical=True), Dependency("fast", fixed("healthy"))]
    app = health_app(deps, version="9", check_timeout=0.05)
    response = await get_health(app)
    body = response.json()
    assert response.status_code == 503
    assert body["dependencies"] == {"slow": "unhealthy", "fast": "healthy"}
    assert "timed out" in body["details"]["slow"]["error"]


async def test_unhealthy_503_has_retry_after() -> None:
    """An unhealthy 503 carries Retry-After like every other 503; a 200 does not."""
    sick = [Dependency("db", fixed("unhealthy"), critical=True)]
    app = health_app(sick, version="9", retry_after=7)
    response = await get_health(app)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    well = [Dependency("db", fixed("healthy"), critical=True)]
    app = health_app(well, version="9")
    assert "Retry-After" not in (await get_health(app)).headers


async def test_uptime_counts_from_start() -> None:
    """Uptime is seconds since the given start."""
    app = health_app([], version="9", started=time.monotonic() - 100)
    body = (await get_health(app)).json()
    assert 100 <= body["uptime"] < 200
    assert body["version"] == "9"


async def test_breaker_check_reflects_state() -> None:
    """breaker_check is healthy when CLOSED, degraded when OPEN or HALF_OPEN, with details."""
    clock = FakeClock()
    breaker = CircuitBreaker("risk", failure_threshold=2, recovery_timeout=10.0, clock=clock)
    check = breaker_check(breaker)
    assert await check() == CheckResult(
        "healthy", {"breaker": "CLOSED", "consecutive_failures": 0, "retry_after": 0.0}
    )
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(4.0)
    assert await check() == CheckResult(
        "degraded", {"breaker": "OPEN", "consecutive_failures": 2, "retry_after": 6.0}
    )
    clock.advance(6.0)
    result = await check()
    assert isinstance(result, CheckResult)
    assert (result.status, result.detail["breaker"]) == ("degraded", "HALF_OPEN")


async def test_breaker_in_health_endpoint() -> None:
    """An open breaker shows in /health as a degraded dependency, service still 200."""
    breaker = CircuitBreaker("risk", failure_threshold=1, recovery_timeout=10.0)
    breaker.record_failure()
    status, body = await health_of(Dependency("risk_management", breaker_check(breaker)))
    assert (status, body["status"]) == (200, "degraded")
    assert body["details"]["risk_management"]["breaker"] == "OPEN"


async def test_details_name_no_url_nor_host() -> None:
    """An error's text is reported without the URL or host:port it names (/health is open)."""

    async def refused() -> CheckResult:
        raise ConnectionError("Error 111 connecting to redis.internal:6379; see redis://u@db:1/0")

    async def described() -> CheckResult:
        detail = {"reason": "ConnectTimeout from https://api.exchange.coinbase.com/products"}
        return CheckResult("degraded", {**detail, "peers": ["10.0.0.7:8001"], "at": "14:05:33"})

    status, body = await health_of(Dependency("redis", refused), Dependency("source", described))
    assert status == 200
    text = str(body)
    for secret in ("redis.internal", "6379", "redis://", "coinbase.com", "10.0.0.7"):
        assert secret not in text
    assert body["details"]["redis"]["error"] == (
        "ConnectionError: Error 111 connecting to <host>; see <url>"
    )
    assert body["details"]["source"] == {
        "reason": "ConnectTimeout from <url>",
        "peers": ["<host>"],
        "at": "14:05:33",
    }


async def test_head_answers_like_get() -> None:
    """HEAD /health has GET's status and headers (503 when unhealthy too)."""
    for deps in ([], [Dependency("database", raising, critical=True)]):
        app = app_with(health_checks=deps)
        async with client_of(app, headers={}) as client:
            get, head = await client.get("/health"), await client.head("/health")
        assert head.status_code == get.status_code
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers.get("retry-after") == get.headers.get("retry-after")


async def test_livez_answers_while_health_is_unhealthy() -> None:
    """Liveness checks nothing: 200 alive even when a critical dependency is down."""
    sick = [Dependency("db", fixed("unhealthy"), critical=True)]
    app = health_app(sick, version="9")
    async with client_of(app) as client:
        live = await client.get("/livez")
        ready = await client.get("/health")
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    assert ready.status_code == 503


def test_the_services_routes_are_matched_before_health_and_metrics() -> None:
    # FastAPI tries an app's routers in the order they were included, and nearly every
    # request is a service route: /health and /metrics go last (~100 k instructions per
    # request saved, 5% of a trade). The document lists paths in that order (/metrics is
    # not in it).
    router = APIRouter(prefix="/api/v1")

    @router.get("/thing")
    async def thing() -> dict[str, bool]:
        return {"ok": True}

    paths = list(app_with(router).openapi()["paths"])
    assert paths.index("/api/v1/thing") < paths.index("/health")
