"""Traces: an OpenTelemetry span per request, W3C `traceparent` on every hop.

The request middleware (pure ASGI: `BaseHTTPMiddleware` is slow and loses contextvars)
starts a server span whose parent is the caller's `traceparent`; a caller that sends
only `X-Trace-ID` (32 hex) has that ID adopted as the trace id. The span's trace id is
the request's trace ID: echoed as `X-Trace-ID`, on every log line (`trace_id_var`, the
same id formatted once per request), in the order, and forwarded by `ServiceClient` as
`traceparent`. The same middleware counts the request for `/metrics` and writes the
access line, so one layer does all three.

Spans are sampled and exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT`
is set. Otherwise the SDK's ALWAYS_OFF sampler makes them non-recording: ids are made
and propagated, nothing is recorded or sent.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import CALLER_SCOPE_KEY

if TYPE_CHECKING:
    from shared.metrics import AppMetrics

TRACE_HEADER = "X-Trace-ID"
_TRACE_HEADER_RAW = TRACE_HEADER.lower().encode()
_TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
UNMATCHED_ROUTE = "unmatched"

access_log = logging.getLogger("shared.access")
propagator = TraceContextTextMapPropagator()

# The current request's trace id as 32 hex digits: for log lines and orders, so the
# OTel span context is not looked up and formatted on every record.
trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)
# A caller's X-Trace-ID to become the next span's trace id (see `_AdoptingIds`).
_adopted: ContextVar[int | None] = ContextVar("adopted_trace_id", default=None)


class _AdoptingIds(RandomIdGenerator):
    """Random ids, except a trace id the middleware adopted from `X-Trace-ID`.

    The adopted id must start a root span: a made-up parent span would point the
    exported trace at a span that never existed.
    """

    def generate_trace_id(self) -> int:
        adopted = _adopted.get()
        return adopted if adopted is not None else super().generate_trace_id()


def new_trace_id() -> str:
    """A fresh trace ID: 32 hex digits, the W3C trace-id shape (never all zeros)."""
    return f"{_IDS.generate_trace_id():032x}"


def current_trace_id() -> str | None:
    """The trace ID of the request being handled, if any."""
    return trace_id_var.get()


_IDS = _AdoptingIds()


class Telemetry:
    """One app's tracer: `service.name` is the service's compose name.

    Built non-exporting; `start()` (in the lifespan) switches to OTLP export when an
    endpoint is configured, `shutdown()` flushes the spans still queued.
    """

    def __init__(self, service_name: str, endpoint: str | None = None) -> None:
        self.service_name = service_name
        self.endpoint = endpoint
        self.resource = Resource.create({"service.name": service_name})
        self._provider = TracerProvider(
            sampler=ALWAYS_OFF, resource=self.resource, id_generator=_IDS
        )
        self.tracer: Tracer = self._provider.get_tracer("shared.tracing")

    @property
    def exporting(self) -> bool:
        return self.endpoint is not None

    def start(self) -> None:
        """Export spans over OTLP/HTTP to `endpoint` (its `/v1/traces`), if one is set."""
        if self.endpoint is None:
            return
        # Imported here: the exporter pulls in protobuf and requests, unused otherwise.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(
            sampler=ParentBased(ALWAYS_ON), resource=self.resource, id_generator=_IDS
        )
        exporter = OTLPSpanExporter(endpoint=f"{self.endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
        self._provider = provider
        self.tracer = provider.get_tracer("shared.tracing")

    def shutdown(self) -> None:
        """Send what is queued and stop exporting."""
        self._provider.shutdown()


def parent_context(traceparent: str | None, given: str | None) -> otel_context.Context | None:
    """The caller's span as the parent (a valid `traceparent`), else None.

    With no usable `traceparent`, a 32-hex `X-Trace-ID` is set aside for the id generator
    (`_adopted`); the caller resets it once the span has started.
    """
    if traceparent is not None:
        found = propagator.extract({"traceparent": traceparent})
        if trace.get_current_span(found).get_span_context().is_valid:
            return found
    if given is not None and _TRACE_ID_RE.fullmatch(given) and given != "0" * 32:
        _adopted.set(int(given, 16))
    return None


def inject(headers: dict[str, str]) -> None:
    """Put the current span on outgoing `headers` as `traceparent` (and `X-Trace-ID`)."""
    trace_id = trace_id_var.get()
    if trace_id is not None:
        headers[TRACE_HEADER] = trace_id
        propagator.inject(headers)


class TraceMiddleware:
    """Runs each HTTP request in a server span, echoes its trace id, counts and logs it.

    The access line is written here, inside the request's context, so it carries the
    trace ID (uvicorn's own access log runs outside it and cannot). With `telemetry`
    None (`OBSERVABILITY=false`) it only binds the trace ID, as before spans existed.
    """

    def __init__(
        self, app: ASGIApp, telemetry: Telemetry | None = None, metrics: AppMetrics | None = None
    ) -> None:
        self.app = app
        self.telemetry = telemetry
        self.metrics = metrics

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
        started = time.perf_counter()
        adopted = _adopted.set(None)
        parent = parent_context(traceparent, given)
        if self.telemetry is None:
            span = None
            caller = trace.get_current_span(parent).get_span_context() if parent else None
            trace_id = f"{caller.trace_id if caller else _IDS.generate_trace_id():032x}"
        else:
            span = self.telemetry.tracer.start_span("HTTP", parent, kind=SpanKind.SERVER)
            trace_id = f"{span.get_span_context().trace_id:032x}"
            span_token = otel_context.attach(trace.set_span_in_context(span))
        _adopted.reset(adopted)
        raw_id = trace_id.encode()
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
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            method: str = scope["method"]
            if self.metrics is not None:
                self.metrics.observe_request(method, route, status, elapsed)
            if span is not None:
                if span.is_recording():
                    span.update_name(f"{method} {route}")
                    span.set_attributes(
                        {
                            "http.request.method": method,
                            "http.route": route,
                            "url.path": scope["path"],
                            "http.response.status_code": status,
                        }
                    )
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
                span.end()
                otel_context.detach(span_token)
            if access_log.isEnabledFor(logging.INFO):
                # The key's role and id (never the key), once `shared.auth` has read it.
                caller = scope.get(CALLER_SCOPE_KEY)
                who = f"{caller.role}:{caller.key_id}" if caller else "-"
                access_log.info(
                    "%s %s %d %.1fms %s", method, scope["path"], status, elapsed * 1000, who
                )
            trace_id_var.reset(token)
