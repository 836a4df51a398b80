"""Where every service decodes a JSON request body: `JsonRoute`, the routers' route class.

Routes declare their body as a schema model (`body: TradeRequest`) and FastAPI validates
it; only the decoding of the raw bytes happens here, in `decode_json`, so a rule about
what JSON is accepted (say, refusing duplicate keys) is written once for all four
services. FastAPI's own decoder is the standard library's; orjson does the same in a
fraction of the time, and its `JSONDecodeError` is the standard library's, so FastAPI
still answers malformed JSON with its 422.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


def decode_json(raw: bytes) -> Any:
    """A request body's JSON value; raises `json.JSONDecodeError` (orjson's) if malformed."""
    return orjson.loads(raw)


class JsonRequest(Request):
    """A request whose `json()` is `decode_json` of its body."""

    async def json(self) -> Any:
        return decode_json(await self.body())


class JsonRoute(APIRoute):
    """The route class of every router: bodies are decoded by `decode_json`.

    FastAPI's documented way to change how a request is read ("Custom Request and
    APIRoute class"): the handler gets a `JsonRequest` on the same ASGI messages.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return handler if self.body_field is None else handle
