"""The one pooled HTTP client per process, and how its transport errors are read.

The default transport is aiohttp behind httpx's API (`httpx-aiohttp`): on this stack's
four-hop trade path it serves about four times the requests of httpx's own transport.
Its error mapping is coarse (a server that drops the connection after the request was
sent surfaces as `httpx.ConnectTimeout`), so `was_sent` reads the original aiohttp
exception to decide whether a request may have reached the server.
"""

from __future__ import annotations

import aiohttp
import httpx
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

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


def default_transport(max_connections: int = 200) -> httpx.AsyncBaseTransport:
    """A pooled aiohttp-backed transport."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    inner = AiohttpTransport(limits=limits, trust_env=False)

    def session() -> aiohttp.ClientSession:
        # What httpx-aiohttp would build, minus aiohttp's own silent resend of idempotent
        # requests after a disconnect: `ServiceClient`'s policy must be the only retry,
        # or every GET attempt could reach the server twice.
        connector = aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=KEEPALIVE_SECONDS, ssl=inner.ssl_context
        )
        built = aiohttp.ClientSession(connector=connector)
        built._retry_connection = False
        return built

    inner.client = session  # called lazily, inside the running loop
    return _MappedErrorsTransport(inner)


def make_http_client(
    transport: httpx.AsyncBaseTransport | None = None, *, timeout: float = 5.0
) -> httpx.AsyncClient:
    """The process's pooled client; the app's lifespan opens and closes it."""
    return httpx.AsyncClient(
        transport=transport or default_transport(),
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
        return not isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
