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


def default_transport(max_connections: int = 200) -> httpx.AsyncBaseTransport:
    """A pooled aiohttp-backed transport."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    return AiohttpTransport(limits=limits, trust_env=False)


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
