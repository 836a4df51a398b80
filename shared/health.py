"""`GET /health` built from named, time-bounded dependency checks; `GET /livez` beside it.

`/health` is readiness (send me traffic?): it checks the dependencies. `/livez` is
liveness (restart me?): it answers from the event loop and checks nothing, so a
database or an upstream outage never gets every replica restarted at once.

A check is an async callable returning a `DependencyStatus` ("healthy", "degraded" or
"unhealthy") or a `Check` result with a detail. A check that raises or runs past its
time bound counts as unhealthy. The service is unhealthy (503) when a critical
dependency is; degraded (200) when any dependency is not healthy.

`/health` is open to anyone (no API key), so what it says is public: URLs and host names
in a dependency's detail (an error's text names where it failed to connect) are blanked
here, in one place, whatever check wrote them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.breaker import BreakerState, CircuitBreaker

DependencyStatus = Literal["healthy", "degraded", "unhealthy"]

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# host:port, where the host has a letter in it (not a time of day such as 14:05).
_HOST_PORT = re.compile(r"\b(?=[A-Za-z0-9.-]*[A-Za-z])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*:\d{1,5}\b")
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b")


def public(value: Any) -> Any:
    """`value` with every URL and host:port in its strings blanked, for the open `/health`."""
    if isinstance(value, str):
        return _IPV4.sub("<host>", _HOST_PORT.sub("<host>", _URL.sub("<url>", value)))
    if isinstance(value, dict):
        return {key: public(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [public(item) for item in value]
    return value


@dataclass(frozen=True)
class CheckResult:
    status: DependencyStatus
    detail: dict[str, Any] = field(default_factory=dict)


CheckFn = Callable[[], Awaitable[CheckResult | DependencyStatus]]


@dataclass(frozen=True)
class Dependency:
    """One named check; `critical` dependencies make the whole service unhealthy."""

    name: str
    check: CheckFn
    critical: bool = False


def breaker_check(breaker: CircuitBreaker) -> CheckFn:
    """A check that reads a client's breaker: no network call, so it is always cheap."""

    async def check() -> CheckResult:
        snap = breaker.snapshot()
        status: DependencyStatus = "healthy" if snap.state is BreakerState.CLOSED else "degraded"
        return CheckResult(
            status,
            {
                "breaker": snap.state.value,
                "consecutive_failures": snap.consecutive_failures,
                "retry_after": snap.retry_after,
            },
        )

    return check


async def _run(dep: Dependency, timeout: float) -> CheckResult:
    try:
        result = await asyncio.wait_for(dep.check(), timeout)
    except TimeoutError:
        return CheckResult("unhealthy", {"error": f"check timed out after {timeout}s"})
    except Exception as exc:
        return CheckResult("unhealthy", {"error": f"{type(exc).__name__}: {exc}"})
    return result if isinstance(result, CheckResult) else CheckResult(result)


def health_router(
    *,
    version: str,
    check_timeout: float = 1.0,
    started: float | None = None,
    retry_after: int = 5,
) -> APIRouter:
    """A router with `GET /health` running the `health_checks` of the lifespan state."""
    router = APIRouter(tags=["health"])
    start = time.monotonic() if started is None else started

    # HEAD too (the same answer, no body): load balancers and uptime probes ask with it.
    @router.head("/health", include_in_schema=False)
    @router.get("/health", summary="Service health and its dependencies")
    async def health(request: Request) -> JSONResponse:
        """Healthy, degraded (still serving) or unhealthy (503), with each dependency."""
        # The lifespan state, read as `shared.app.lifespan_state` does (not imported:
        # `shared.app` imports this module).
        deps: list[Dependency] = request.scope.get("state", {}).get("health_checks", [])
        results = await asyncio.gather(*(_run(d, check_timeout) for d in deps))
        if any(r.status == "unhealthy" and d.critical for d, r in zip(deps, results, strict=True)):
            overall: DependencyStatus = "unhealthy"
        elif any(r.status != "healthy" for r in results):
            overall = "degraded"
        else:
            overall = "healthy"
        body = {
            "status": overall,
            "dependencies": {d.name: r.status for d, r in zip(deps, results, strict=True)},
            "details": {
                d.name: public(r.detail) for d, r in zip(deps, results, strict=True) if r.detail
            },
            "uptime": round(time.monotonic() - start, 3),
            "version": version,
        }
        if overall == "unhealthy":
            # Like every 503 here: tell pollers (compose healthchecks, balancers) when to ask again.
            return JSONResponse(body, status_code=503, headers={"Retry-After": str(retry_after)})
        return JSONResponse(body)

    @router.get("/livez", summary="Liveness: the process answers (no dependency checked)")
    async def livez() -> dict[str, str]:
        """200 while the process serves requests at all; checks nothing else."""
        return {"status": "alive"}

    return router
