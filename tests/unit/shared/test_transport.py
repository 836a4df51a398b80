"""The transports against real sockets and in process: what they send, and whether a
failed request was sent or not; `ServiceClient`'s retry rules on top of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

import aiohttp
import httpx
import orjson
import pytest
from aiohttp.helpers import calculate_timeout_when
from starlette.types import Receive, Scope, Send

from shared.breaker import CircuitBreaker
from shared.client import ServiceClient
from shared.errors import ServiceUnavailableError, UpstreamClientError
from shared.retry import RetryPolicy
from shared.tracing import TRACE_HEADER, trace_id_var
from shared.transport import (
    USER_AGENT,
    AiohttpTransport,
    HttpxTransport,
    Request,
    Transport,
    TransportError,
    parse_retry_after,
    total_timeout,
    with_query,
)
from tests.support.servers import free_port, serve_in_thread
from tests.unit.shared.fakes import FakeClock, FakeSleep


class TinyServer:
    """A raw TCP server that reads whole HTTP requests, counts them, then misbehaves."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self.release = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            self.requests += 1
            if self.mode == "garbage":
                writer.write(b"NOT HTTP AT ALL\r\n\r\n")
                await writer.drain()
            elif self.mode == "hang":
                await self.release.wait()
            elif self.mode == "trickle":
                # Answers, one byte per 50 ms for 10 s: every read arrives in time.
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n")
                for _ in range(200):
                    if self.release.is_set():
                        break
                    writer.write(b" ")
                    await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.release.wait(), 0.05)
            elif self.mode == "ok":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def tiny_server(mode: str) -> AsyncIterator[tuple[TinyServer, str]]:
    state = TinyServer(mode)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield state, f"http://127.0.0.1:{port}"
    finally:
        state.release.set()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def pool() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport()
    yield transport
    await transport.aclose()


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep(FakeClock())


def client(
    transport: Transport, url: str, *, attempts: int = 3, sleep: FakeSleep | None = None
) -> ServiceClient:
    """A ServiceClient on `transport` (a real-time deadline: the transports' timeouts are
    real); backoff waits are only recorded."""
    return ServiceClient(
        "execution",
        base_url=url,
        transport=transport,
        timeout=5.0,
        retry=RetryPolicy(attempts=attempts, initial_backoff=0.05, max_backoff=1.0),
        breaker=CircuitBreaker("execution", failure_threshold=5, recovery_timeout=30.0),
        sleep=sleep or FakeSleep(FakeClock()),
    )


async def failure(
    transport: Transport, method: str, url: str, timeout: float = 5.0
) -> TransportError:
    with pytest.raises(TransportError) as info:
        await transport.send(Request(method, url + "/x", {}, timeout, b'{"a":1}'))
    return info.value


async def test_ok_server_answers(pool: AiohttpTransport) -> None:
    """The tiny server speaks enough HTTP for the pool (the harness itself works)."""
    async with tiny_server("ok") as (server, url):
        answer = await pool.send(Request("POST", url + "/x", {}, 5.0, b"{}"))
    assert (answer.status, answer.body) == (200, b"{}")
    assert server.requests == 1


async def test_disconnect_after_send_counts_as_sent(pool: AiohttpTransport) -> None:
    """A server that reads the request then hangs up: the request was sent."""
    async with tiny_server("drop") as (server, url):
        error = await failure(pool, "POST", url)
    assert server.requests == 1
    assert error.sent
    assert not error.timed_out


async def test_connection_refused_counts_as_not_sent(pool: AiohttpTransport) -> None:
    """A port nobody listens on: the connection was refused, nothing was sent."""
    error = await failure(pool, "POST", f"http://127.0.0.1:{free_port()}")
    assert not error.sent
    assert str(error) == "ClientConnectorError"  # the type only: no host in a problem body


async def test_malformed_answer_is_a_sent_transport_error(pool: AiohttpTransport) -> None:
    """A garbage status line is a transport error (sent), not a raw aiohttp one."""
    async with tiny_server("garbage") as (server, url):
        error = await failure(pool, "POST", url)
    assert server.requests == 1
    assert error.sent
    assert isinstance(error.__cause__, aiohttp.ClientError)


async def test_read_timeout_counts_as_sent(pool: AiohttpTransport) -> None:
    """A server that never answers: the timeout follows a sent request."""
    async with tiny_server("hang") as (server, url):
        error = await failure(pool, "POST", url, timeout=0.2)
    assert server.requests == 1
    assert error.sent
    assert error.timed_out


async def test_a_trickled_answer_is_cut_at_the_deadline(pool: AiohttpTransport) -> None:
    """A server sending its body a byte at a time cannot hold the caller past its timeout."""
    async with tiny_server("trickle") as (server, url):
        error = await failure(pool, "POST", url, timeout=0.3)
    assert server.requests == 1
    assert error.sent
    assert error.timed_out


async def test_post_without_key_not_retried_after_disconnect(pool: AiohttpTransport) -> None:
    """A POST the server received before hanging up is not sent again."""
    async with tiny_server("drop") as (server, url):
        with pytest.raises(ServiceUnavailableError):
            await client(pool, url).post_json("/trade", {"amount": 1})
    assert server.requests == 1


async def test_post_without_key_not_retried_after_read_timeout(pool: AiohttpTransport) -> None:
    """A POST whose answer never came is not sent again."""
    async with tiny_server("hang") as (server, url):
        with pytest.raises(ServiceUnavailableError, match="timed out"):
            await client(pool, url).post_json("/trade", {"amount": 1}, timeout=0.2)
    assert server.requests == 1


async def test_post_with_key_and_get_retried_after_disconnect(pool: AiohttpTransport) -> None:
    """A keyed POST reaches the server exactly max_attempts times after disconnects; a GET
    at most twice per attempt: aiohttp itself resends an idempotent request once after a
    disconnect (RFC 9112 allows it; aiohttp has no public switch to turn it off)."""
    async with tiny_server("drop") as (server, url):
        with pytest.raises(ServiceUnavailableError):
            await client(pool, url).get_json("/price")
        assert 3 <= server.requests <= 6  # 3 attempts, each maybe resent once by aiohttp
        sent = server.requests
        with pytest.raises(ServiceUnavailableError):
            await client(pool, url).post_json("/trade", {"amount": 1}, idempotency_key="k")
        assert server.requests == sent + 3  # a POST is never resent by aiohttp


async def test_post_without_key_retried_when_refused(
    pool: AiohttpTransport, sleep: FakeSleep
) -> None:
    """A POST whose connection was refused is retried: nothing reached the server."""
    refused = client(pool, f"http://127.0.0.1:{free_port()}", sleep=sleep)
    with pytest.raises(ServiceUnavailableError, match="unreachable"):
        await refused.post_json("/trade", {"amount": 1})
    assert len(sleep.delays) == 2
    assert refused.breaker.snapshot().total_failures == 3


async def test_malformed_answer_counts_against_the_breaker(pool: AiohttpTransport) -> None:
    """A garbage answer is a ServiceUnavailableError and a breaker failure, never a raw crash."""
    async with tiny_server("garbage") as (server, url):
        garbled = client(pool, url)
        with pytest.raises(ServiceUnavailableError):
            await garbled.post_json("/trade", {"amount": 1})
    assert server.requests == 1
    assert garbled.breaker.snapshot().total_failures == 1


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app that answers with what it received: query, headers, body."""
    if scope["type"] != "http":
        return
    message = await receive()
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    answer = {"query": scope["query_string"].decode(), "headers": headers}
    answer["body"] = message.get("body", b"").decode()
    status = {"/missing": 404, "/busy": 503}.get(scope["path"], 200)
    body = orjson.dumps(answer)
    extra = [(b"retry-after", b"7")] if status == 503 else []
    await send({"type": "http.response.start", "status": status, "headers": extra})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def each_transport(kind: str) -> AsyncIterator[tuple[Transport, str]]:
    """The echo app behind the production pool (a real socket) or in process (ASGI)."""
    if kind == "aiohttp":
        with serve_in_thread(echo) as server:
            pool = AiohttpTransport()
            try:
                yield pool, server.url
            finally:
                await pool.aclose()
    else:
        yield HttpxTransport(httpx.ASGITransport(app=echo)), "http://regime"


@pytest.mark.parametrize("kind", ["aiohttp", "asgi"])
async def test_both_transports_send_query_headers_and_body(kind: str) -> None:
    """The production pool and the in-process transport send the same request."""
    async with each_transport(kind) as (transport, url):
        regime = client(transport, url)
        token = trace_id_var.set("trace-native-1")
        try:
            params: dict[str, str | int | float] = {"g": 60, "q": "a b&c=d"}
            got = await regime.get_json("/x", params=params)
            posted = await regime.post_json("/y", {"a": 1}, idempotency_key="k1")
        finally:
            trace_id_var.reset(token)
    assert got["query"] == "g=60&q=a%20b%26c%3Dd"
    assert parse_qs(got["query"])["q"] == ["a b&c=d"]
    assert got["headers"][TRACE_HEADER.lower()] == "trace-native-1"
    assert got["headers"]["user-agent"] == USER_AGENT
    assert posted["body"] == '{"a":1}'
    assert posted["headers"]["content-type"] == "application/json"
    assert posted["headers"]["idempotency-key"] == "k1"


@pytest.mark.parametrize("kind", ["aiohttp", "asgi"])
async def test_both_transports_read_4xx_and_5xx_alike(kind: str) -> None:
    """A 4xx is an UpstreamClientError, a 5xx a ServiceUnavailableError with its Retry-After."""
    async with each_transport(kind) as (transport, url):
        regime = client(transport, url, attempts=1)
        answered = await regime.get_json("/x")
        with pytest.raises(UpstreamClientError) as missing:
            await regime.get_json("/missing")
        with pytest.raises(ServiceUnavailableError) as busy:
            await regime.get_json("/busy")
    assert answered["query"] == ""
    assert missing.value.status_code == 404
    assert busy.value.retry_after == 7
    assert busy.value.extra["upstream_status"] == 503
    assert regime.breaker.snapshot().total_successes == 2


async def test_the_in_process_transport_maps_httpx_errors() -> None:
    """httpx's connect errors are not sent; its read timeouts are sent and timed out."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    request = Request("GET", "http://x/", {}, 1.0)
    with pytest.raises(TransportError) as refused:
        await HttpxTransport(httpx.MockTransport(refuse)).send(request)
    with pytest.raises(TransportError) as stalled:
        await HttpxTransport(httpx.MockTransport(stall)).send(request)
    assert (refused.value.sent, refused.value.timed_out) == (False, False)
    assert (stalled.value.sent, stalled.value.timed_out) == (True, True)


async def test_the_in_process_transport_cuts_a_hanging_app_at_the_timeout() -> None:
    """An app that never answers is cut off at the request's timeout (sent, timed out)."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with asyncio.timeout(5.0):  # a missing cut-off fails instead of hanging the test
        with pytest.raises(TransportError) as info:
            await HttpxTransport(httpx.MockTransport(hang)).send(
                Request("GET", "http://x/", {}, 0.05)
            )
    assert info.value.sent
    assert info.value.timed_out


def test_with_query_appends_percent_encoded_pairs() -> None:
    """Parameters join the URL's own query; spaces and reserved characters are escaped."""
    assert with_query("http://h/p", None) == "http://h/p"
    assert with_query("http://h/p", {"a": 1, "b": "x y/z"}) == "http://h/p?a=1&b=x%20y%2Fz"
    assert with_query("http://h/p?s=1", {"t": 2.5}) == "http://h/p?s=1&t=2.5"


def test_the_total_timeout_is_not_rounded_up() -> None:
    """aiohttp rounds timeouts of 5 s or more up to the next whole second: not ours, so a
    call ends at its deadline (5.9 s is not 6.x s)."""
    timeout = total_timeout(5.9)
    assert timeout.total is not None
    when = calculate_timeout_when(1000.25, timeout.total, timeout.ceil_threshold)
    assert when == pytest.approx(1006.15)
    assert calculate_timeout_when(1000.25, 5.9, aiohttp.ClientTimeout().ceil_threshold) == 1007


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-2", 0.0),
        ("Tue, 14 Nov 2023 22:13:40 GMT", 10.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Delta-seconds and HTTP dates are understood; garbage is ignored."""
    assert parse_retry_after(header, now=1_700_000_010.0) == expected
