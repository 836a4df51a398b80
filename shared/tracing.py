"""Trace IDs: one per request, taken from the caller or made here, echoed and forwarded.

A pure ASGI middleware (not `BaseHTTPMiddleware`, which is slow and loses contextvars)
reads `X-Trace-ID` or a W3C `traceparent`, keeps the ID in a contextvar for the log
filter and the `ServiceClient`, and writes it on the response.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import CALLER_SCOPE_KEY

TRACE_HEADER = "X-Trace-ID"
_TRACE_HEADER_RAW = TRACE_HEADER.lower().encode()

# Accepted caller IDs: 8-64 characters of letters, digits, '-', '_' or '.'; anything
# else (empty, too long, spaces, control bytes) is replaced so logs stay safe to parse.
_TRACE_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")

access_log = logging.getLogger("shared.access")

trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)


# A trace ID must be unique, not secret: uuid4 reads os.urandom (a system call) on every
# request, while this generator is seeded from it once (and again in a forked child, so
# worker processes do not repeat each other's IDs). 128 bits make a collision negligible.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def new_trace_id() -> str:
    """A fresh trace ID: 32 hex digits, the W3C trace-id shape (never all zeros)."""
    return "%032x" % (_ids.getrandbits(128) or 1)


def current_trace_id() -> str | None:
    """The trace ID of the request being handled, if any."""
    return trace_id_var.get()


def trace_id_from_headers(trace_id: str | None, traceparent: str | None) -> str:
    """Pick the caller's trace ID if well formed, else a new one."""
    if trace_id and _TRACE_ID_RE.fullmatch(trace_id):
        return trace_id
    if traceparent:
        match = _TRACEPARENT_RE.fullmatch(traceparent.strip())
        # Version ff and an all-zero trace-id are invalid per W3C Trace Context.
        if match and match.group(1) != "ff" and match.group(2) != "0" * 32:
            return match.group(2)
    return new_trace_id()


class TraceMiddleware:
    """Binds a trace ID to each HTTP request, echoes it in `X-Trace-ID`, logs the request.

    The access line is written here, inside the request's context, so it carries the
    trace ID (uvicorn's own access log runs outside it and cannot).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given: str | None = None
        traceparent: str | None = None
        for name, value in scope["headers"]:
            if name == _TRACE_HEADER_RAW:
                given = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
        trace_id = trace_id_from_headers(given, traceparent)
        raw_id = trace_id.encode()
        started = time.perf_counter()
        status = 500

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != _TRACE_HEADER_RAW]
                headers.append((_TRACE_HEADER_RAW, raw_id))
                message["headers"] = headers
            await send(message)

        token = trace_id_var.set(trace_id)
        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                # The key's role and id (never the key), once `shared.auth` has read it.
                caller = scope.get(CALLER_SCOPE_KEY)
                access_log.info(
                    "%s %s %d %.1fms %s",
                    scope["method"],
                    scope["path"],
                    status,
                    (time.perf_counter() - started) * 1000,
                    f"{caller.role}:{caller.key_id}" if caller else "-",
                )
            trace_id_var.reset(token)


class TraceIdFilter(logging.Filter):
    """Puts the current trace ID (or '-') on every log record as `trace_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = trace_id_var.get() or "-"
        return True
