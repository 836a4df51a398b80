"""`ServiceClient`: the one way a service calls another.

Every call has a deadline; retries (tenacity) happen only where they are safe: a GET,
a POST carrying an Idempotency-Key, or any request that provably never left (connection
refused). They happen only on connection errors, timeouts and 502/503/504, with
exponential backoff and jitter, bounded in attempts and in total time. A circuit
breaker per target fails fast while it is down; the trace ID goes with every call, and
so does the service's own API key (`SERVICE_KEY`) when it has one.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import httpx
import orjson

from shared.auth import API_KEY_HEADER
from shared.breaker import CircuitBreaker
from shared.discovery import known_service
from shared.errors import CircuitOpenError, ServiceUnavailableError, UpstreamClientError
from shared.retry import AttemptError, RetryPolicy, transport_failure
from shared.settings import CommonSettings
from shared.tracing import inject
from shared.transport import Answer, PooledClient, aiohttp_was_sent, make_http_client, was_sent

__all__ = ["RETRYABLE_STATUSES", "SAFE_METHODS", "RetryPolicy", "ServiceClient"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})


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
        api_key: str | None = None,
    ) -> None:
        # Checked now, so an unknown service name fails at construction.
        self.service_name = known_service(service_name)
        self.base_url = (base_url or CommonSettings().url_of(service_name)).rstrip("/")
        self._owns_http = http is None
        self._http = http or make_http_client(transport, timeout=timeout)
        # The pooled client's own aiohttp session, used directly (see `shared.transport`).
        self._native = self._http.native if isinstance(self._http, PooledClient) else None
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(
            service_name, failure_threshold=5, recovery_timeout=30.0, clock=clock
        )
        self._sleep = sleep
        self._clock = clock
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
            api_key=settings.service_key.get_secret_value() if settings.service_key else None,
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this instance created it."""
        if self._owns_http:
            await self._http.aclose()

    async def get_json(
        self, path: str, *, params: Mapping[str, Any] | None = None, timeout: float | None = None
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
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        timeout: float | None,
    ) -> Answer:
        method = method.upper()
        deadline = self._clock() + (self.timeout if timeout is None else timeout)
        idempotent = method in SAFE_METHODS or idempotency_key is not None
        send_headers = {**self._auth, **headers} if headers else dict(self._auth)
        content = None
        if json is not None:
            send_headers["Content-Type"] = "application/json"
            content = orjson.dumps(json)
        if idempotency_key is not None:
            send_headers["Idempotency-Key"] = idempotency_key
        inject(send_headers)
        url = self.base_url + path
        call = (method, url, params, content, send_headers, deadline, idempotent)
        # The first attempt runs outside tenacity: building its retry machinery on every
        # call cost more than the rest of the client on the trade path. Only a retryable
        # failure enters the loop below, which applies the same stop and wait rules.
        try:
            return await self._attempt(*call)
        except AttemptError as exc:
            if not exc.retryable:
                raise
            first: AttemptError | None = exc
        async for attempt in self.retry.retrying(deadline, self._clock, self._sleep):
            with attempt:
                if first is not None:
                    # Tenacity's attempt 1 is the one that already failed above: replaying
                    # its error lets tenacity decide on a retry exactly as if it had run it.
                    failed, first = first, None
                    raise failed
                return await self._attempt(*call)
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
    ) -> Answer:
        name = self.service_name
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise ServiceUnavailableError(name, f"{name}: no time left for the call")
        if not self.breaker.allow():
            self.outcomes["circuit_open"] += 1
            raise CircuitOpenError(
                name,
                f"{name} is unavailable (circuit breaker open)",
                retry_after=self.breaker.retry_after(),
            )
        try:
            if self._native is not None:
                # Bounded whole by aiohttp's total timeout (see `NativePool.send`).
                answer = await self._native.send(method, url, params, content, headers, remaining)
            else:
                # httpx's timeouts bound each phase (connect, each read); this bounds the
                # sum, so a server trickling its answer cannot hold the caller past its
                # deadline.
                async with asyncio.timeout(remaining):
                    response = await self._http.request(
                        method,
                        url,
                        params=params,
                        content=content,
                        headers=headers,
                        timeout=remaining,
                    )
                answer = Answer(response.status_code, response.content, response.headers, response)
        except aiohttp.ClientError as exc:
            # aiohttp's timeouts are also `TimeoutError`s: this clause must come first.
            self.breaker.record_failure()
            sent, timed_out = aiohttp_was_sent(exc), isinstance(exc, TimeoutError)
            self.outcomes["timeout" if timed_out else "transport_error"] += 1
            raise transport_failure(name, exc, sent, timed_out, idempotent) from exc
        except httpx.TransportError as exc:
            self.breaker.record_failure()
            timed_out = isinstance(exc, httpx.TimeoutException)
            self.outcomes["timeout" if timed_out else "transport_error"] += 1
            raise transport_failure(name, exc, was_sent(exc), timed_out, idempotent) from exc
        except TimeoutError as exc:
            # The whole attempt ran out of time; the request may have been sent.
            self.breaker.record_failure()
            self.outcomes["timeout"] += 1
            raise AttemptError(name, f"{name} timed out", retryable=idempotent) from exc
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
            raise UpstreamClientError(name, status, answer.detail(), body=answer.decoded())
        self.outcomes["ok"] += 1
        return answer
