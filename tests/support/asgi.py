"""An app with its lifespan run, called in process as uvicorn would serve it.

The clients send the tests' admin key (`tests.support.keys`) unless told otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support import keys


@dataclass(frozen=True)
class Served:
    """An app being served: its ASGI callable (with the state) and the lifespan's state."""

    asgi: ASGIApp
    state: Mapping[str, Any]


@asynccontextmanager
async def lifespan_app(app: FastAPI) -> AsyncIterator[ASGIApp]:
    """Run `app`'s lifespan; yield `app` with the lifespan's state in each request's scope."""
    async with serving(app) as served:
        yield served.asgi


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[Served]:
    """Run `app`'s lifespan; yield it served with the lifespan's state.

    `httpx.ASGITransport` sends no lifespan events, so the state the lifespan yields is
    put in each request's scope here, a shallow copy per request as uvicorn does.
    """
    async with app.router.lifespan_context(app) as yielded:
        state = dict(yielded or {})

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, "state": dict(state)}, receive, send)

        yield Served(with_state, state)


@asynccontextmanager
async def asgi_client(
    app: FastAPI, base_url: str = "http://test", headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """`app` with its lifespan run, behind an in-process httpx client."""
    async with lifespan_app(app) as served, client_of(served, base_url, headers) as client:
        yield client


@asynccontextmanager
async def client_of(
    asgi: ASGIApp, base_url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process httpx client of `asgi`, sending the admin key unless `headers` say
    otherwise (`{}`: no key)."""
    transport = httpx.ASGITransport(app=asgi)
    sent = keys.headers() if headers is None else headers
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=sent) as client:
        yield client
