"""`ServiceClient`: the one way a service calls another.

Every call has a deadline; retries (tenacity) happen only where they are safe: a GET,
a POST carrying an Idempotency-Key, or any request that provably never left (connection
refused). They happen only on connection errors, timeouts and 502/503/504, with
exponential backoff and jitter, bounded in attempts and in total time. A circuit
breaker per target fails fast while it is down; the trace ID goes with every call.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from shared.breaker import CircuitBreaker
from shared.discovery import service_url
from shared.errors import CircuitOpenError, ServiceUnavailableError, UpstreamClientError
from shared.settings import CommonSettings
from shared.tracing import TRACE_HEADER, current_trace_id
from shared.transport import make_http_client, was_sent

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry; the caller's timeout bounds the total."""

    max_attempts: int = 3
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    jitter: float = 0.05

    def backoff(self, state: RetryCallState) -> float:
        """Seconds to wait before the next attempt: exponential, plus jitter, capped."""
        exponential = self.initial_backoff * 2.0 ** (state.attempt_number - 1)
        return min(exponential + random.uniform(0, self.jitter), self.max_backoff)


class _AttemptError(ServiceUnavailableError):
    """One attempt failed; `retryable` says whether another attempt is safe."""

    def __init__(self, service: str, detail: str, *, retryable: bool, **kw: Any) -> None:
        super().__init__(service, detail, **kw)
        self.retryable = retryable


class _StopAtDeadline(stop_base):
    """Stop when the next backoff would end past the call's deadline."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self.deadline = deadline
        self.clock = clock

    def __call__(self, state: RetryCallState) -> bool:
        return self.clock() + (state.upcoming_sleep or 0.0) >= self.deadline


class ServiceClient:
    """Calls one target service with a timeout, safe retries and a circuit breaker."""

    def __init__(
        self,
        service_name: str,
        *,
        base_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Resolving now makes an unknown service name fail at construction.
        resolved = service_url(service_name)
        self.service_name = service_name
        self.base_url = (base_url or resolved).rstrip("/")
        self._owns_http = http is None
        self._http = http or make_http_client(transport, timeout=timeout)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(
            service_name, failure_threshold=5, recovery_timeout=30.0, clock=clock
        )
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        service_name: str,
        settings: CommonSettings,
        *,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> ServiceClient:
        """A client configured by the shared settings (URL, timeout, retries, breaker)."""
        return cls(
            service_name,
            base_url=settings.url_of(service_name),
            http=http,
            transport=transport,
            timeout=settings.service_timeout_seconds,
            retry=RetryPolicy(max_attempts=settings.retry_max_attempts),
            breaker=CircuitBreaker(
                service_name,
                failure_threshold=settings.breaker_failure_threshold,
                recovery_timeout=settings.breaker_recovery_seconds,
                clock=clock,
            ),
            sleep=sleep,
            clock=clock,
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this instance created it."""
        if self._owns_http:
            await self._http.aclose()

    async def get_json(
        self, path: str, *, params: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """GET `path` and decode the JSON body."""
        response = await self.request("GET", path, params=params, timeout=timeout)
        return orjson.loads(response.content)

    async def post_json(
        self,
        path: str,
        body: Any,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """POST a JSON body to `path` and decode the JSON answer."""
        response = await self.request(
            "POST", path, json=body, idempotency_key=idempotency_key, timeout=timeout
        )
        return orjson.loads(response.content)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one logical request; return a 2xx/3xx response or raise an `UpstreamError`.

        Raises `ServiceUnavailableError` (or `CircuitOpenError`) when the target cannot
        answer, and `UpstreamClientError` when it answers 4xx.
        """
        method = method.upper()
        budget = self.timeout if timeout is None else timeout
        deadline = self._clock() + budget
        idempotent = method in SAFE_METHODS or idempotency_key is not None
        send_headers = dict(headers or {})
        if json is not None:
            send_headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            send_headers["Idempotency-Key"] = idempotency_key
        trace_id = current_trace_id()
        if trace_id is not None:
            send_headers[TRACE_HEADER] = trace_id
        content = orjson.dumps(json) if json is not None else None
        url = self.base_url + path

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_attempts)
            | _StopAtDeadline(deadline, self._clock),
            wait=self.retry.backoff,
            retry=retry_if_exception(lambda e: isinstance(e, _AttemptError) and e.retryable),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(
                    method, url, params, content, send_headers, deadline, idempotent
                )
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        headers: dict[str, str],
        deadline: float,
        idempotent: bool,
    ) -> httpx.Response:
        name = self.service_name
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise ServiceUnavailableError(name, f"{name}: no time left for the call")
        if not self.breaker.allow():
            raise CircuitOpenError(
                name,
                f"{name} is unavailable (circuit breaker open)",
                retry_after=self.breaker.retry_after(),
            )
        try:
            # httpx's timeout bounds each phase (connect, each read); this bounds the sum,
            # so a server trickling its answer cannot hold the caller past its deadline.
            async with asyncio.timeout(remaining):
                response = await self._http.request(
                    method, url, params=params, content=content, headers=headers, timeout=remaining
                )
        except httpx.TransportError as exc:
            self.breaker.record_failure()
            sent = was_sent(exc)
            kind = "unreachable" if not sent else "failed"
            if sent and isinstance(exc, httpx.TimeoutException):
                kind = "timed out"
            raise _AttemptError(
                name, f"{name} {kind}: {type(exc).__name__}", retryable=idempotent or not sent
            ) from exc
        except TimeoutError as exc:
            # The whole attempt ran out of time; the request may have been sent.
            self.breaker.record_failure()
            raise _AttemptError(name, f"{name} timed out", retryable=idempotent) from exc
        except BaseException:
            # Cancelled mid-call: say nothing about the target, but free the probe slot.
            self.breaker.release_probe()
            raise
        status = response.status_code
        if status >= 500:
            self.breaker.record_failure()
            raise _AttemptError(
                name,
                f"{name} answered {status}",
                retryable=idempotent and status in RETRYABLE_STATUSES,
                retry_after=_retry_after(response),
                extra={"upstream_status": status},
            )
        self.breaker.record_success()
        if status >= 400:
            raise UpstreamClientError(name, status, _detail(response), body=_body(response))
        return response


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text


def _detail(response: httpx.Response) -> str:
    body = _body(response)
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return f"answered {response.status_code}"
