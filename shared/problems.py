"""RFC 9457 problem+json for every error, with the request's trace ID.

One set of handlers: domain errors keep their status, validation errors list the
offending fields as 422, anything unexpected is a 500 whose body hides the stack trace.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import DomainError
from shared.tracing import current_trace_id

PROBLEM_JSON = "application/problem+json"
# `instance` is the request's path: a caller's 10 KB id is not sent back to it whole.
MAX_INSTANCE_CHARS = 256
# Members an error's `extra` may not override (nor collide with as keyword arguments).
_RESERVED = frozenset(
    {"type", "type_", "title", "status", "detail", "instance", "trace_id", "headers", "request"}
)
log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One offending input of a 422."""

    field: str = Field(examples=["amount"])
    location: str = Field(description="body, query, path or header", examples=["body"])
    message: str = Field(examples=["Input should be greater than 0"])
    type: str = Field(examples=["greater_than"])


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details), as every service sends them.

    Errors may carry more members (`retry_after`, `upstream_status`, `order_id`, ...).
    """

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str = Field(examples=["Unprocessable Content"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["Invalid request: amount"])
    instance: str = Field(description="The request's path", examples=["/api/v1/trade"])
    trace_id: str | None = Field(examples=["4bf92f3577b34da6a3ce929d0e0e4736"])
    errors: list[FieldError] | None = Field(default=None, description="422: each field")


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build one problem+json response in the shape every service uses."""
    path = request.url.path
    if len(path) > MAX_INSTANCE_CHARS:
        path = path[:MAX_INSTANCE_CHARS] + "..."
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": path,
        "trace_id": current_trace_id(),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    if exc.status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.detail)
    return problem_response(
        request,
        exc.status,
        exc.detail,
        title=exc.title,
        type_=exc.type,
        headers=exc.headers,
        **{k: v for k, v in exc.extra.items() if k not in _RESERVED},
    )


def _field_name(error: Any) -> str:
    loc = error.get("loc", ("body",))
    if error.get("type") == "json_invalid":
        # FastAPI puts the decoder's character offset in `loc`; it is not a field.
        return "body"
    return ".".join(str(part) for part in loc[1:]) or "body"


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid"))
    loc = error.get("loc", ("body",))
    if error.get("type") == "json_invalid" and len(loc) > 1:
        reason = (error.get("ctx") or {}).get("error", "")
        return f"{message}: {reason} at character {loc[-1]}".replace(":  at", " at")
    return message


def _field_errors(errors: Any) -> list[dict[str, Any]]:
    return [
        {
            "field": _field_name(error),
            "location": str(error.get("loc", ("body",))[0]),
            "message": _message(error),
            "type": error.get("type", "value_error"),
        }
        for error in errors
    ]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        request,
        422,
        f"Invalid request: {fields}" if fields else "Invalid request",
        title="Unprocessable Content",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(
        request, exc.status_code, str(exc.detail), headers=dict(exc.headers or {})
    )


class UnhandledErrorMiddleware:
    """Turns an unexpected exception into a 500 problem with no stack trace in the body.

    Starlette's own catch-all runs outside every user middleware, where the trace ID is
    gone; this one sits inside `TraceMiddleware`, so the 500 carries it like any answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            request = Request(scope)
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            if started:
                raise
            response = problem_response(
                request, 500, "An unexpected error occurred; the trace ID finds it in the logs."
            )
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json.

    Unexpected exceptions are caught by `UnhandledErrorMiddleware`, added by the app factory.
    """
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
