"""Traces: an OpenTelemetry span per request, W3C `traceparent` on every hop.

The request middleware (pure ASGI: `BaseHTTPMiddleware` is slow and loses contextvars)
starts a server span whose parent is the caller's `traceparent`; a caller that sends
only `X-Trace-ID` (32 hex) has that ID adopted as the trace id. The span's trace id is
the request's trace ID: echoed as `X-Trace-ID`, on every log line (`trace_id_var`, the
same id formatted once per request), in the order, and forwarded by `ServiceClient` as
`traceparent`. The same middleware counts the request for `/metrics` and writes the
access line, so one layer does all three.

Spans are recorded by the OTel SDK and exported over OTLP/HTTP only when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set. Otherwise the request's span is a non-recording
one made here (the OTel API's `NonRecordingSpan`): ids are made and propagated, nothing
is recorded or sent, and no SDK code runs.
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
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    Tracer,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import CALLER_SCOPE_KEY

if TYPE_CHECKING:
    from shared.metrics import AppMetrics

TRACE_HEADER = "X-Trace-ID"
_TRACE_HEADER_RAW = TRACE_HEADER.lower().encode()
_TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_TRACEPARENT_RE = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*"
)
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
UNMATCHED_ROUTE = "unmatched"

access_log = logging.getLogger("shared.access")

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


def current_trace_id() -> str | None:
    """The trace ID of the request being handled, if any."""
    return trace_id_var.get()


# The process's id generator (the SDK's and the middleware's); `random` reseeds it in a
# forked worker.
TRACE_IDS = _AdoptingIds()


class Telemetry:
    """One app's tracing: `service.name` is the service's compose name.

    `start()` (in the lifespan) sets up the OTel SDK with OTLP export when an endpoint
    is configured; without one there is no tracer and the middleware makes only the
    span context the next hops need. `shutdown()` sends the spans still queued.
    """

    def __init__(self, service_name: str, endpoint: str | None = None) -> None:
        self.service_name = service_name
        self.endpoint = endpoint
        self.tracer: Tracer | None = None
        self._provider: TracerProvider | None = None

    def start(self) -> None:
        """Export spans over OTLP/HTTP to `endpoint` (its `/v1/traces`), if one is set."""
        if self.endpoint is None:
            return
        # Imported here: the exporter pulls in protobuf and requests, unused otherwise.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self._provider = TracerProvider(
            sampler=ParentBased(ALWAYS_ON),
            resource=Resource.create({"service.name": self.service_name}),
            id_generator=TRACE_IDS,
        )
        exporter = OTLPSpanExporter(endpoint=f"{self.endpoint.rstrip('/')}/v1/traces")
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self._provider.get_tracer("shared.tracing")

    def shutdown(self) -> None:
        """Send what is queued and stop exporting."""
        if self._provider is not None:
            self._provider.shutdown()
        self._provider = self.tracer = None


def caller_span(traceparent: str | None) -> SpanContext | None:
    """The caller's span from a valid W3C `traceparent`, else None.

    Parsed here rather than by OTel's `TraceContextTextMapPropagator`: its extract, with
    the SDK's `start_span`, cost ~27 us per request against ~3 us for this (measured
    on the bench machine), several percent of a trade's CPU over its four hops. The
    rules are the propagator's; `tracestate` is not carried (nothing here uses it).
    """
    if traceparent is None:
        return None
    match = _TRACEPARENT_RE.fullmatch(traceparent)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE:
        return None
    if span_id == _ZERO_SPAN:
        return None
    sampled = TraceFlags(int(flags, 16) & TraceFlags.SAMPLED)
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=sampled)


def adopted_trace_id(given: str | None) -> int | None:
    """A caller's `X-Trace-ID` as a trace id, if it is one (32 lower-case hex, not zero)."""
    if given is not None and _TRACE_ID_RE.fullmatch(given) and given != _ZERO_TRACE:
        return int(given, 16)
    return None


def inject(headers: dict[str, str]) -> None:
    """Put the current span on outgoing `headers` as `traceparent` (and `X-Trace-ID`).

    Written as OTel's propagator writes it, without its carrier machinery (see
    `caller_span`).
    """
    trace_id = trace_id_var.get()
    if trace_id is None:
        return
    headers[TRACE_HEADER] = trace_id
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        headers["traceparent"] = (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        )


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
        caller = caller_span(traceparent)
        adopted = None if caller else adopted_trace_id(given)
        span: Span | None = None
        tracer = self.telemetry.tracer if self.telemetry is not None else None
        if tracer is not None:
            parent = trace.set_span_in_context(NonRecordingSpan(caller)) if caller else None
            adopting = _adopted.set(adopted)
            span = tracer.start_span("HTTP", parent, kind=SpanKind.SERVER)
            _adopted.reset(adopting)
            trace_id_int = span.get_span_context().trace_id
        else:
            trace_id_int = caller.trace_id if caller else adopted or TRACE_IDS.generate_trace_id()
            if self.telemetry is not None:
                # Nothing is recorded: the span is only the context the next hops need.
                flags = caller.trace_flags if caller else TraceFlags(TraceFlags.DEFAULT)
                context = SpanContext(trace_id_int, TRACE_IDS.generate_span_id(), False, flags)
                span = NonRecordingSpan(context)
        if span is not None:
            span_token = otel_context.attach(trace.set_span_in_context(span))
        trace_id = f"{trace_id_int:032x}"
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
