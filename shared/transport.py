"""The one transport seam under every outgoing HTTP call (`ServiceClient`, the Coinbase
source, the console's health watch).

    Transport                 send(Request) -> Response; aclose()
    ├── AiohttpTransport      production: the process's one pooled aiohttp session
    └── HttpxTransport        any httpx transport: `ASGITransport` (an app in process),
                              `MockTransport` (a scripted answer) in tests

    TransportError            no answer; `sent` says whether the request may have reached
                              the server (only a refused or timed-out connect proves not)

A transport sends one request, reads the whole answer within `Request.timeout` seconds in
all (connect, send, body), and follows no redirects; retries, breakers and what a status
means belong to the caller. aiohttp's pool is the production transport: on this stack's
four-hop trade path, httpx's own request and response building cost about three times
aiohttp's work per call.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import httpx
import orjson

__all__ = [
    "USER_AGENT",
    "AiohttpTransport",
    "HttpxTransport",
    "Request",
    "Response",
    "Transport",
    "TransportError",
    "opened",
    "parse_retry_after",
    "with_query",
]

# Below uvicorn's 5 s keep-alive, so the pool never reuses a connection the server is
# about to close (a POST on such a connection could not be retried safely).
KEEPALIVE_SECONDS = 4.0
USER_AGENT = "tradestack/1.0"


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request: `url` with its query already in it (`with_query`)."""

    method: str
    url: str
    headers: Mapping[str, str]
    timeout: float  # seconds for the whole exchange, the answer's body included
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """What one request got back, read whole."""

    status: int
    body: bytes
    headers: Mapping[str, str]  # case-insensitive

    def retry_after(self) -> float | None:
        """The seconds the server asked to wait (`Retry-After`), if it said."""
        return parse_retry_after(self.headers.get("Retry-After"))

    def decoded(self) -> Any:
        """The body as JSON, or as text when it is not JSON."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return self.body.decode("utf-8", errors="replace")


class TransportError(Exception):
    """No answer came; the message names the underlying error's type (never a host).

    `sent`: the request may have reached the server (so a request that is not safe to
    repeat must not be sent again); `timed_out`: time ran out."""

    def __init__(self, detail: str, *, sent: bool, timed_out: bool) -> None:
        super().__init__(detail)
        self.sent = sent
        self.timed_out = timed_out


class Transport(Protocol):
    """Sends one request and reads its whole answer; raises only `TransportError`."""

    async def send(self, request: Request) -> Response:
        """The answer to `request`, read within `request.timeout` seconds."""
        ...

    async def aclose(self) -> None:
        """Release the connections."""
        ...


def with_query(url: str, params: Mapping[str, str | int | float] | None) -> str:
    """`url` with `params` appended as its query (percent-encoded, spaces as %20)."""
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params, quote_via=quote)}"


class AiohttpTransport:
    """The process's pooled aiohttp session (keep-alive connections reused across calls).

    aiohttp itself resends an idempotent request (GET) once after a disconnect on a reused
    connection, as RFC 9112 allows; it has no public switch to turn that off, so a GET may
    reach the server twice per attempt. It never resends a POST, and the keep-alive below
    the servers' makes a stale connection rare.
    """

    def __init__(self, *, max_connections: int = 200) -> None:
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Built on first use: aiohttp wants a running loop.
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, keepalive_timeout=KEEPALIVE_SECONDS
        )
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT}, trust_env=False
        )
        return self._session

    async def send(self, request: Request) -> Response:
        """One request on the pool, bounded whole by one total timeout.

        One timer, not per-phase ones (the read timeout is re-armed on every chunk, ~20 us
        of CPU per call); `total` also covers the body, so a server trickling its answer
        cannot hold the caller past the deadline.
        """
        session = self._session or self._open()
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.content,
                headers=request.headers,
                timeout=total_timeout(request.timeout),
                allow_redirects=False,
            ) as answer:
                return Response(answer.status, await answer.read(), answer.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Only a failed or timed-out connect proves nothing was sent. aiohttp's own
            # timeouts are `TimeoutError`s too; a plain one is the total running out.
            unsent = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
            raise TransportError(
                type(exc).__name__, sent=not unsent, timed_out=isinstance(exc, TimeoutError)
            ) from exc

    @property
    def closed(self) -> bool:
        """Whether the pool was opened and then closed."""
        return self._session is not None and self._session.closed

    async def aclose(self) -> None:
        """Close the pool's connections."""
        if self._session is not None:
            await self._session.close()


@asynccontextmanager
async def opened(transport: Transport | None) -> AsyncIterator[Transport]:
    """`transport` when one is injected (its owner closes it), else a new aiohttp pool,
    closed on exit: what a lifespan uses."""
    if transport is not None:
        yield transport
        return
    pool = AiohttpTransport()
    try:
        yield pool
    finally:
        await pool.aclose()


def total_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """`seconds` for the whole call, exactly: aiohttp would round a timeout of 5 s or more
    up to the next whole second of the loop's clock (its `ceil_threshold`)."""
    return aiohttp.ClientTimeout(total=seconds, ceil_threshold=math.inf)


class HttpxTransport:
    """Any httpx transport behind the seam: `httpx.ASGITransport(app=...)` to call an app
    in process, `httpx.MockTransport(handler)` to script answers.

    httpx's timeouts bound each phase; `asyncio.timeout` bounds the sum, so a transport
    that ignores them (an app that hangs) cannot hold the caller past the deadline.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def send(self, request: Request) -> Response:
        """`request` through the httpx transport, read whole within its timeout."""
        seconds = request.timeout
        outgoing = httpx.Request(
            request.method,
            request.url,
            headers={"User-Agent": USER_AGENT, **request.headers},
            content=request.content,
            extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), seconds)},
        )
        try:
            async with asyncio.timeout(seconds):
                answer = await self.inner.handle_async_request(outgoing)
                try:
                    body = await answer.aread()
                finally:
                    await answer.aclose()
        except httpx.TransportError as exc:
            unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            raise TransportError(
                type(exc).__name__,
                sent=not unsent,
                timed_out=isinstance(exc, httpx.TimeoutException),
            ) from exc
        except TimeoutError as exc:
            raise TransportError("TimeoutError", sent=True, timed_out=True) from exc
        return Response(answer.status_code, body, answer.headers)

    async def aclose(self) -> None:
        """Close the httpx transport."""
        await self.inner.aclose()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
