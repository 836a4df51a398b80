"""`ServiceClient`: the one way a service calls another.

Every call has a deadline; retries (`shared.retry`) happen only where they are safe: a
GET, a POST carrying an Idempotency-Key, or any request that provably never left
(connection refused). They happen only on connection errors, timeouts and 502/503/504,
with exponential backoff and jitter (or the target's Retry-After), bounded in attempts and
in total time. A circuit breaker per target fails fast while it is down; the trace ID goes
with every call, and so does the service's own API key (`SERVICE_KEY`) when it has one.
Requests go out through the process's transport (`shared.transport`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from shared.auth import API_KEY_HEADER
from shared.breaker import CircuitBreaker
from shared.discovery import known_service
from shared.errors import CircuitOpenError, ServiceUnavailableError, UpstreamClientError
from shared.retry import RetryPolicy, retry
from shared.settings import CommonSettings
from shared.tracing import inject
from shared.transport import Request, Response, Transport, TransportError, with_query

__all__ = ["RETRYABLE_STATUSES", "SAFE_METHODS", "AttemptError", "ServiceClient"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
Params = Mapping[str, str | int | float]


class AttemptError(ServiceUnavailableError):
    """One attempt failed; `retryable` says whether another attempt is safe."""

    def __init__(self, service: str, detail: str, *, retryable: bool, **kw: Any) -> None:
        super().__init__(service, detail, **kw)
        self.retryable = retryable


def _retryable(error: BaseException) -> bool:
    return isinstance(error, AttemptError) and error.retryable


class ServiceClient:
    """Calls one target service with a timeout, safe retries and a circuit breaker.

    Built by `from_settings` in the services; the keywords without defaults are the
    settings (`shared.settings.CommonSettings` states their defaults, once).
    """

    def __init__(
        self,
        service_name: str,
        *,
        transport: Transport,
        timeout: float,
        retry: RetryPolicy,
        breaker: CircuitBreaker,
        base_url: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        api_key: str | None = None,
    ) -> None:
        # Checked now, so an unknown service name fails at construction.
        self.service_name = known_service(service_name)
        self.base_url = (base_url or CommonSettings().url_of(service_name)).rstrip("/")
        self.transport = transport  # the process's; its owner (the lifespan) closes it
        self.timeout = timeout
        self.retry = retry
        self.breaker = breaker
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        # Sent as X-API-Key on every call; never logged (errors name the service only).
        self._auth = {API_KEY_HEADER: api_key} if api_key else {}
        # Attempts by outcome, for `upstream_requests_total` (`shared.metrics`).
        self.outcomes: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls,
        service_name: str,
        settings: CommonSettings,
        *,
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> ServiceClient:
        """A client configured by the shared settings (URL, timeout, retries, breaker)."""
        return cls(
            service_name,
            base_url=settings.url_of(service_name),
            transport=transport,
            timeout=settings.service_timeout_seconds,
            retry=settings.retry_policy(),
            breaker=CircuitBreaker(
                service_name,
                failure_threshold=settings.breaker_failure_threshold,
                recovery_timeout=settings.breaker_recovery_seconds,
                clock=clock,
            ),
            sleep=sleep,
            clock=clock,
            jitter=jitter,
            api_key=settings.service_key.get_secret_value() if settings.service_key else None,
        )

    async def get_json(
        self, path: str, *, params: Params | None = None, timeout: float | None = None
    ) -> Any:
        """GET `path` and decode the JSON body."""
        answer = await self._call("GET", path, params, None, None, None, timeout)
        return orjson.loads(answer.body)

    async def post_json(
        self,
        path: str,
        body: Any,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """POST a JSON body to `path` and decode the JSON answer."""
        answer = await self._call("POST", path, None, body, None, idempotency_key, timeout)
        return orjson.loads(answer.body)

    async def _call(
        self,
        method: str,
        path: str,
        params: Params | None,
        json: Any,
        headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        timeout: float | None,
    ) -> Response:
        method = method.upper()
        idempotent = method in SAFE_METHODS or idempotency_key is not None
        send_headers = {**self._auth, **headers} if headers else dict(self._auth)
        content = None
        if json is not None:
            send_headers["Content-Type"] = "application/json"
            content = orjson.dumps(json)
        if idempotency_key is not None:
            send_headers["Idempotency-Key"] = idempotency_key
        inject(send_headers)
        url = with_query(self.base_url + path, params)

        def attempt(seconds_left: float) -> Awaitable[Response]:
            request = Request(method, url, send_headers, seconds_left, content)
            return self._attempt(request, idempotent)

        return await retry(
            attempt,
            on=_retryable,
            policy=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            clock=self._clock,
            sleep=self._sleep,
            jitter=self._jitter,
        )

    async def _attempt(self, request: Request, idempotent: bool) -> Response:
        name = self.service_name
        if request.timeout <= 0:
            raise ServiceUnavailableError(name, f"{name}: no time left for the call")
        if not self.breaker.allow():
            self.outcomes["circuit_open"] += 1
            raise CircuitOpenError(
                name,
                f"{name} is unavailable (circuit breaker open)",
                retry_after=self.breaker.retry_after(),
            )
        try:
            answer = await self.transport.send(request)
        except TransportError as exc:
            self.breaker.record_failure()
            self.outcomes["timeout" if exc.timed_out else "transport_error"] += 1
            kind = "unreachable" if not exc.sent else "timed out" if exc.timed_out else "failed"
            detail = f"{name} {kind}: {exc}"
            raise AttemptError(name, detail, retryable=idempotent or not exc.sent) from exc
        except BaseException:
            # Cancelled mid-call: say nothing about the target, but free the probe slot.
            self.breaker.release_probe()
            raise
        status = answer.status
        if status >= 500:
            self.breaker.record_failure()
            self.outcomes["server_error"] += 1
            raise AttemptError(
                name,
                f"{name} answered {status}",
                retryable=idempotent and status in RETRYABLE_STATUSES,
                retry_after=answer.retry_after(),
                extra={"upstream_status": status},
            )
        self.breaker.record_success()
        if status >= 400:
            self.outcomes["client_error"] += 1
            raise UpstreamClientError(name, status, _detail(answer), body=answer.decoded())
        self.outcomes["ok"] += 1
        return answer


def _detail(answer: Response) -> str:
    """What the server said went wrong (a problem's `detail`), or its status."""
    body = answer.decoded()
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return f"answered {answer.status}"
