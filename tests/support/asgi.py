"""An app with its lifespan run, called in process as uvicorn would serve it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


@asynccontextmanager
async def lifespan_app(app: FastAPI) -> AsyncIterator[ASGIApp]:
    """Run `app`'s lifespan; yield `app` with the lifespan's state in each request's scope.

    `httpx.ASGITransport` sends no lifespan events, so the state the lifespan yields is
    put in each request's scope here, a shallow copy per request as uvicorn does.
    """
    async with app.router.lifespan_context(app) as yielded:
        state = dict(yielded or {})

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, "state": dict(state)}, receive, send)

        yield with_state


@asynccontextmanager
async def asgi_client(
    app: FastAPI, base_url: str = "http://test"
) -> AsyncIterator[httpx.AsyncClient]:
    """`app` with its lifespan run, behind an in-process httpx client."""
    async with lifespan_app(app) as served:
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
