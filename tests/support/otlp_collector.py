"""A tiny OTLP/HTTP trace receiver: keeps every span it is sent, for the tests to read.

It speaks the real protocol (protobuf `ExportTraceServiceRequest` on `POST /v1/traces`),
decoded with the OpenTelemetry project's own generated messages.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str


class OtlpCollector:
    """Receives spans over OTLP/HTTP (protobuf); `url` is set once it is served."""

    def __init__(self) -> None:
        self.url = ""
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/traces", self._receive, methods=["POST"])])

    def spans(self, trace_id: str | None = None) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    async def _receive(self, request: Request) -> Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        received = []
        for resource_spans in message.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=service,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                        )
                    )
        with self._lock:
            self._spans.extend(received)
        body = ExportTraceServiceResponse().SerializeToString()
        return Response(body, media_type="application/x-protobuf")
