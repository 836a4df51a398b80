"""`JSONBytes`: the one response type for a JSON body rendered before the route returns.

Routes return schema models, which FastAPI serialises; a route whose body is already
bytes (a cached price, a stored order replayed for an Idempotency-Key) returns them in a
`JSONBytes`, declaring its schema with `response_model=` so the OpenAPI document still
shows it.
"""

from __future__ import annotations

from starlette.responses import Response


class JSONBytes(Response):
    """JSON bytes sent as they are (`application/json`)."""

    media_type = "application/json"
