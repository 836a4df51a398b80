"""Trace IDs: taken from the caller or made here, echoed, kept apart, put on log lines."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.logs import ContextFilter
from shared.tracing import TRACE_HEADER, TRACE_IDS, caller_span, current_trace_id, inject
from tests.unit.shared.apps import app_with, client_of

NEW_ID = re.compile(r"^[0-9a-f]{32}$")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
log = logging.getLogger("tests.tracing")


class Capture(logging.Handler):
    """Keeps records, after the trace filter ran on them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(ContextFilter("tests"))
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def make_app() -> FastAPI:
    router = APIRouter()

    @router.get("/forward")
    async def forward() -> dict[str, str]:
        """The headers a call to another service would carry from here."""
        headers: dict[str, str] = {}
        inject(headers)
        return headers

    @router.get("/echo")
    async def echo() -> dict[str, str | None]:
        """Report the trace ID before and after yielding to other requests."""
        before = current_trace_id()
        for _ in range(3):
            await asyncio.sleep(0)
        log.info("handled")
        return {"before": before, "after": current_trace_id()}

    return app_with(router)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(make_app()) as client:
        yield client


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    loggers = [logging.getLogger("tests.tracing"), logging.getLogger("shared.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_echoes_given_trace_id(client: httpx.AsyncClient) -> None:
    """A 32-hex X-Trace-ID is adopted as the trace id, used by the handler and echoed."""
    given = "0123456789abcdef0123456789abcdef"
    response = await client.get("/echo", headers={TRACE_HEADER: given})
    assert response.headers[TRACE_HEADER] == given
    assert response.json() == {"before": given, "after": given}


async def test_generates_trace_id_when_absent(client: httpx.AsyncClient) -> None:
    """With no trace header a fresh 32-hex ID is made, used and echoed; each request its own."""
    first = await client.get("/echo")
    second = await client.get("/echo")
    assert NEW_ID.match(first.headers[TRACE_HEADER])
    assert first.json()["before"] == first.headers[TRACE_HEADER]
    assert first.headers[TRACE_HEADER] != second.headers[TRACE_HEADER]


async def test_accepts_w3c_traceparent(client: httpx.AsyncClient) -> None:
    """A valid traceparent's trace-id becomes the trace ID."""
    response = await client.get("/echo", headers={"traceparent": TRACEPARENT})
    assert response.headers[TRACE_HEADER] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert response.json()["before"] == "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_outgoing_calls_carry_the_trace_with_this_hops_span(
    client: httpx.AsyncClient,
) -> None:
    """A call made while handling a traced request sends traceparent with the same trace
    id, the caller's sampled flag, and this hop's own span id as the parent."""
    forwarded = (await client.get("/forward", headers={"traceparent": TRACEPARENT})).json()
    version, trace_id, span_id, flags = forwarded["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id != "00f067aa0ba902b7"
    assert re.fullmatch(r"[0-9a-f]{16}", span_id)
    assert forwarded[TRACE_HEADER] == trace_id
    fresh = (await client.get("/forward")).json()
    assert fresh["traceparent"].endswith("-00")
    assert fresh["traceparent"].split("-")[1] == fresh[TRACE_HEADER]


def test_future_traceparent_versions_may_carry_more_fields() -> None:
    """W3C: a version other than 00 may add fields after the flags; 00 may not."""
    later = caller_span("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
    assert later is not None
    assert later.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert caller_span("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more") is None


async def test_traceparent_wins_over_x_trace_id(client: httpx.AsyncClient) -> None:
    """When both are valid, the W3C traceparent (the span's parent) wins."""
    headers = {TRACE_HEADER: "0123456789abcdef0123456789abcdef", "traceparent": TRACEPARENT}
    response = await client.get("/echo", headers=headers)
    assert response.headers[TRACE_HEADER] == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "headers",
    [
        {TRACE_HEADER: "a" * 65},
        {TRACE_HEADER: "a" * 31},
        {TRACE_HEADER: "0" * 32},
        {TRACE_HEADER: "0123456789ABCDEF0123456789ABCDEF"},
        {TRACE_HEADER: "mine-12345"},
        {TRACE_HEADER: "short"},
        {TRACE_HEADER: "has spaces in it"},
        {TRACE_HEADER: "semi;colon;injection"},
        {TRACE_HEADER: 'quote"and{json}'},
        {TRACE_HEADER: ""},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01"},
        {"traceparent": "garbage"},
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"},
    ],
)
async def test_malformed_ids_replaced(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Malformed X-Trace-ID or traceparent values are not trusted: a new ID is made."""
    response = await client.get("/echo", headers=headers)
    trace_id = response.headers[TRACE_HEADER]
    assert NEW_ID.match(trace_id)
    assert trace_id not in "".join(headers.values()).lower()
    assert response.json()["before"] == trace_id


async def test_concurrent_requests_keep_their_own_ids(client: httpx.AsyncClient) -> None:
    """50 interleaved requests each see and get back only their own trace ID."""
    ids = [f"{i:032x}" for i in range(1, 51)]
    responses = await asyncio.gather(
        *(client.get("/echo", headers={TRACE_HEADER: trace_id}) for trace_id in ids)
    )
    for trace_id, response in zip(ids, responses, strict=True):
        assert response.headers[TRACE_HEADER] == trace_id
        assert response.json() == {"before": trace_id, "after": trace_id}
    assert current_trace_id() is None


async def test_log_records_carry_trace_id(client: httpx.AsyncClient, captured: Capture) -> None:
    """The filter puts the request's trace ID on log records, and '-' outside a request."""
    await client.get("/echo", headers={TRACE_HEADER: "10000000000000000000000000000001"})
    log.info("outside")
    handled = [r for r in captured.records if r.getMessage() == "handled"]
    outside = [r for r in captured.records if r.getMessage() == "outside"]
    assert [r.__dict__["trace_id"] for r in handled] == ["10000000000000000000000000000001"]
    assert [r.__dict__["trace_id"] for r in outside] == ["-"]


async def test_access_line_carries_trace_id(client: httpx.AsyncClient, captured: Capture) -> None:
    """The middleware's access line names method, path and status, with the trace ID."""
    await client.get("/echo", headers={TRACE_HEADER: "a0000000000000000000000000000001"})
    await client.get("/missing", headers={TRACE_HEADER: "a0000000000000000000000000000002"})
    lines = {
        r.__dict__["trace_id"]: r.getMessage()
        for r in captured.records
        if r.name == "shared.access"
    }
    assert lines["a0000000000000000000000000000001"].startswith("GET /echo 200 ")
    assert lines["a0000000000000000000000000000002"].startswith("GET /missing 404 ")


def new_trace_id() -> str:
    return f"{TRACE_IDS.generate_trace_id():032x}"


def test_new_trace_ids_are_distinct_hex() -> None:
    """Fresh IDs have the W3C shape (128 bits, never zero) and do not repeat."""
    ids = {new_trace_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(NEW_ID.fullmatch(i) and int(i, 16) for i in ids)


def test_forked_child_makes_its_own_trace_ids() -> None:
    """A forked worker does not repeat the parent's next IDs (the generator is reseeded)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first ID and leave at once
        os.write(write_end, new_trace_id().encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        child_id = pipe.read().decode()
    assert NEW_ID.fullmatch(child_id)
    assert child_id != new_trace_id()


def test_fastapi_s_own_telemetry_stays_off_under_a_global_tracer_provider() -> None:
    """The spans are `TraceMiddleware`'s alone: with a global OTel tracer provider set (a
    host's auto-instrumentation, say), FastAPI's native telemetry would trace each request
    a second time. Run in a child process: the global provider can be set only once."""
    script = textwrap.dedent(
        """
        import asyncio
        from fastapi import APIRouter
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        from tests.unit.shared.apps import app_with, client_of

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        router = APIRouter()

        @router.get("/thing")
        async def thing() -> dict[str, bool]:
            return {"ok": True}

        async def main() -> None:
            async with client_of(app_with(router)) as client:
                assert (await client.get("/thing")).status_code == 200

        asyncio.run(main())
        print([span.name for span in exporter.get_finished_spans()])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
