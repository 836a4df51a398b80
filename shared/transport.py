"""The one pooled HTTP client per process, and how its transport errors are read.

The default transport is aiohttp behind httpx's API (`httpx-aiohttp`): on this stack's
four-hop trade path it serves about four times the requests of httpx's own transport.
Its error mapping is coarse (a server that drops the connection after the request was
sent surfaces as `httpx.ConnectTimeout`), so `was_sent` reads the original aiohttp
exception to decide whether a request may have reached the server.

`ServiceClient` skips httpx and talks to the same aiohttp session directly when no
transport was injected (`PooledClient.native`): httpx's request and response building
cost about three times aiohttp's own work per call on the trade path.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

# Below uvicorn's 5 s keep-alive, so the pool never reuses a connection the server is
# about to close (a POST on such a connection could not be retried safely).
KEEPALIVE_SECONDS = 4.0
USER_AGENT = "tradestack/1.0"


class _MappedErrorsTransport(httpx.AsyncBaseTransport):
    """Surfaces every aiohttp error as an `httpx.TransportError`.

    `httpx-aiohttp` lets some through unmapped (a malformed status line raises
    `aiohttp.ClientResponseError`), which would bypass the breaker and the retry rules
    and end as a 500. The original stays the `__cause__`, so `was_sent` still reads it.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, pool: NativePool) -> None:
        self._inner = inner
        self.pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()
        await self.pool.aclose()  # closed here too if only `ServiceClient` used the session


class NativePool:
    """The process's one aiohttp session, shared by the httpx transport and `ServiceClient`.

    Built lazily (aiohttp wants a running loop) and once, so both paths share one pool.
    """

    def __init__(self, max_connections: int, ssl_context: ssl.SSLContext) -> None:
        self.max_connections = max_connections
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # What httpx-aiohttp would build. aiohttp itself resends an idempotent request
            # (GET) once after a disconnect, as RFC 9112 allows; it has no public switch to
            # turn that off, so a GET attempt may reach the server twice. It never resends
            # a POST, and the keep-alive below the servers' makes a stale connection rare.
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=KEEPALIVE_SECONDS, ssl=self._ssl
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> Answer:
        """One request on the session, read whole within `timeout` seconds in all.

        One total timeout, not httpx-aiohttp's per-phase ones: with the caller's deadline
        as every phase's bound they added nothing but timers (the read timeout is re-armed
        on every chunk received), ~20 us of CPU per call; `total` also covers the body,
        so a server trickling its answer cannot hold the caller past the deadline.
        """
        if params:
            # Spelt into the URL here: yarl caches parsed URL strings, but builds a query
            # from pairs anew on every call.
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(_query(params), quote_via=quote)}"
        async with self.session().request(
            method,
            url,
            data=content,
            headers=headers,
            timeout=total_timeout(timeout),
            allow_redirects=False,
        ) as response:
            return Answer(response.status, await response.read(), response.headers, None)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def total_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """`seconds` for the whole call, exactly: aiohttp would round a timeout of 5 s or more
    up to the next whole second of the loop's clock (its `ceil_threshold`)."""
    return aiohttp.ClientTimeout(total=seconds, ceil_threshold=math.inf)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request got back; `response` is set when it came through httpx."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    response: httpx.Response | None

    def retry_after(self) -> float | None:
        """The `Retry-After` seconds the server asked for, if any."""
        try:
            return float(self.headers["Retry-After"])
        except (KeyError, ValueError):
            return None

    def decoded(self) -> Any:
        """The body as JSON, or as text when it is not JSON."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return self.body.decode("utf-8", errors="replace")

    def detail(self) -> str:
        """What the server said went wrong (a problem's `detail`), or its status."""
        body = self.decoded()
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            return str(body["detail"])
        return f"answered {self.status}"


def _query(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query pairs spelt as httpx spells them (true/false, empty for None, lists repeated)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            text = "true" if item is True else "false" if item is False else item
            pairs.append((key, "" if text is None else str(text)))
    return pairs


class PooledClient(httpx.AsyncClient):
    """An httpx client whose default transport's aiohttp session `ServiceClient` may use.

    `native` is None when a transport was injected (tests): then everything goes
    through httpx and the injected transport.
    """

    def __init__(self, *, native: NativePool | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.native = native  # closed with the transport


def default_transport(max_connections: int = 200) -> httpx.AsyncBaseTransport:
    """A pooled aiohttp-backed transport."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    inner = AiohttpTransport(limits=limits, trust_env=False)
    pool = NativePool(max_connections, inner.ssl_context)
    inner.client = pool.session  # called lazily, inside the running loop
    return _MappedErrorsTransport(inner, pool)


def make_http_client(
    transport: httpx.AsyncBaseTransport | None = None, *, timeout: float = 5.0
) -> PooledClient:
    """The process's pooled client; the app's lifespan opens and closes it."""
    native: NativePool | None = None
    if transport is None:
        default = default_transport()
        native = default.pool if isinstance(default, _MappedErrorsTransport) else None
        transport = default
    return PooledClient(
        native=native,
        transport=transport,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


def was_sent(exc: httpx.TransportError) -> bool:
    """Whether the request may have reached the server before `exc` happened.

    Only a failure to connect (refused, unresolvable, connect timeout, no pool slot)
    proves nothing was sent; every other error may have followed the request.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError | TimeoutError):
        return aiohttp_was_sent(cause)
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def aiohttp_was_sent(exc: aiohttp.ClientError | TimeoutError) -> bool:
    """`was_sent` for an aiohttp error: only a connector error or connect timeout proves no."""
    return not isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
