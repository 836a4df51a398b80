"""Where every service decodes a JSON request body: `JsonRoute`, the routers' route class.

Routes declare their body as a schema model (`body: TradeRequest`) and FastAPI validates
it; only the decoding of the raw bytes happens here, in `decode_json`, so a rule about
what JSON is accepted (say, refusing duplicate keys) is written once for all four
services. FastAPI's own decoder is the standard library's; orjson does the same in a
fraction of the time, and its `JSONDecodeError` is the standard library's, so FastAPI
still answers malformed JSON with its 422.

A JSON object with the same key twice (`{"side": "sell", "side": "buy"}`) is refused
(422): JSON parsers disagree on which one wins, so a proxy or a log and the service
could read two different orders. orjson keeps the last one without saying so, so it
decodes only after a quick scan that finds no key twice in one object; a body with a
repeated key string is decoded again by the standard library, whose `object_pairs_hook`
sees every pair and names the repeat. (The standard library alone would also take
`NaN` and `Infinity`, which orjson refuses.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

# Every JSON string followed by a colon: the keys, and only the keys (a value string is
# followed by a comma, a brace or a bracket).
_KEY = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"\s*:')


def decode_json(raw: bytes) -> Any:
    """A request body's JSON value; `json.JSONDecodeError` if malformed or a key repeats."""
    value = orjson.loads(raw)
    keys = _KEY.findall(raw)
    if len(keys) != len(set(keys)) or any(b"\\" in key for key in keys):
        # The same key text twice somewhere (legitimate in two objects, refused in one),
        # or an escaped key ("\u0061" is "a"): the exact check decides.
        _refuse_repeats(raw)
    return value


def _refuse_repeats(raw: bytes) -> None:
    text = raw.decode("utf-8")

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = json.dumps(key if len(key) <= 40 else key[:37] + "...")
                where = text.rfind(json.dumps(key)[:-1])
                raise json.JSONDecodeError(f"duplicate key {shown}", text, max(where, 0))
            seen.add(key)
        return dict(pairs)

    json.loads(text, object_pairs_hook=no_repeats)


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
