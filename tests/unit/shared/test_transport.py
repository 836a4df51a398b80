"""The aiohttp-backed transport against real sockets: was a failed request sent or not?"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

import aiohttp
import httpx
import orjson
import pytest
from aiohttp.helpers import calculate_timeout_when
from starlette.types import Receive, Scope, Send

from shared.client import RetryPolicy, ServiceClient
from shared.errors import ServiceUnavailableError, UpstreamClientError
from shared.tracing import TRACE_HEADER, trace_id_var
from shared.transport import (
    USER_AGENT,
    PooledClient,
    make_http_client,
    total_timeout,
    was_sent,
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
def sleep() -> FakeSleep:
    return FakeSleep(FakeClock())


@pytest.fixture
async def client_for(sleep: FakeSleep) -> AsyncIterator[Callable[[str], ServiceClient]]:
    """ServiceClients on the default (aiohttp) transport, without real backoff waits."""
    clients: list[ServiceClient] = []

    def build(url: str) -> ServiceClient:
        client = ServiceClient(
            "execution",
            base_url=url,
            timeout=5.0,
            retry=RetryPolicy(max_attempts=3),
            sleep=sleep,
            clock=sleep.clock,
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


async def transport_error(method: str, url: str, timeout: float = 5.0) -> httpx.TransportError:
    async with make_http_client() as http:
        with pytest.raises(httpx.TransportError) as info:
            await http.request(method, url + "/x", content=b'{"a":1}', timeout=timeout)
    return info.value


async def test_ok_server_answers() -> None:
    """The tiny server speaks enough HTTP for the default client (the harness itself works)."""
    async with tiny_server("ok") as (server, url), make_http_client() as http:
        response = await http.post(url + "/x", content=b"{}")
    assert response.status_code == 200
    assert server.requests == 1


async def test_disconnect_after_send_counts_as_sent() -> None:
    """A server that reads the request then hangs up: the request was sent."""
    async with tiny_server("drop") as (server, url):
        error = await transport_error("POST", url)
    assert server.requests == 1
    assert was_sent(error)


async def test_connection_refused_counts_as_not_sent() -> None:
    """A port nobody listens on: the connection was refused, nothing was sent."""
    error = await transport_error("POST", f"http://127.0.0.1:{free_port()}")
    assert not was_sent(error)


async def test_malformed_answer_is_a_sent_transport_error() -> None:
    """A garbage status line surfaces as an httpx transport error (sent), not a raw aiohttp one."""
    async with tiny_server("garbage") as (server, url):
        error = await transport_error("POST", url)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert server.requests == 1
    assert was_sent(error)


async def test_read_timeout_counts_as_sent() -> None:
    """A server that never answers: the read timeout follows a sent request."""
    async with tiny_server("hang") as (server, url):
        error = await transport_error("POST", url, timeout=0.2)
    assert isinstance(error, httpx.ReadTimeout)
    assert server.requests == 1
    assert was_sent(error)


async def test_post_without_key_not_retried_after_disconnect(
    client_for: Callable[[str], ServiceClient],
) -> None:
    """A POST the server received before hanging up is not sent again."""
    async with tiny_server("drop") as (server, url):
        with pytest.raises(ServiceUnavailableError):
            await client_for(url).post_json("/trade", {"amount": 1})
    assert server.requests == 1


async def test_post_without_key_not_retried_after_read_timeout(
    client_for: Callable[[str], ServiceClient],
) -> None:
    """A POST whose answer never came is not sent again."""
    async with tiny_server("hang") as (server, url):
        with pytest.raises(ServiceUnavailableError, match="timed out"):
            await client_for(url).post_json("/trade", {"amount": 1}, timeout=0.2)
    assert server.requests == 1


async def test_a_trickled_answer_is_cut_at_the_deadline(
    client_for: Callable[[str], ServiceClient],
) -> None:
    """A server sending its body a byte at a time cannot hold the caller past its timeout."""
    async with tiny_server("trickle") as (server, url):
        with pytest.raises(ServiceUnavailableError, match="timed out"):
            await client_for(url).post_json("/trade", {"amount": 1}, timeout=0.3)
    assert server.requests == 1


async def test_post_with_key_and_get_retried_after_disconnect(
    client_for: Callable[[str], ServiceClient],
) -> None:
    """A keyed POST reaches the server exactly max_attempts times after disconnects; a GET
    at most twice per attempt: aiohttp itself resends an idempotent request once after a
    disconnect (RFC 9112 allows it; aiohttp has no public switch to turn it off)."""
    async with tiny_server("drop") as (server, url):
        with pytest.raises(ServiceUnavailableError):
            await client_for(url).get_json("/price")
        assert 3 <= server.requests <= 6  # 3 attempts, each maybe resent once by aiohttp
        sent = server.requests
        with pytest.raises(ServiceUnavailableError):
            await client_for(url).post_json("/trade", {"amount": 1}, idempotency_key="k")
        assert server.requests == sent + 3  # a POST is never resent by aiohttp


async def test_post_without_key_retried_when_refused(
    client_for: Callable[[str], ServiceClient], sleep: FakeSleep
) -> None:
    """A POST whose connection was refused is retried: nothing reached the server."""
    client = client_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceUnavailableError, match="unreachable"):
        await client.post_json("/trade", {"amount": 1})
    assert len(sleep.delays) == 2
    assert client.breaker.snapshot().total_failures == 3


async def test_malformed_answer_counts_against_the_breaker(
    client_for: Callable[[str], ServiceClient],
) -> None:
    """A garbage answer is a ServiceUnavailableError and a breaker failure, never a raw crash."""
    async with tiny_server("garbage") as (server, url):
        client = client_for(url)
        with pytest.raises(ServiceUnavailableError):
            await client.post_json("/trade", {"amount": 1})
    assert server.requests == 1
    assert client.breaker.snapshot().total_failures == 1


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


async def test_native_path_sends_query_headers_and_body() -> None:
    """Without an injected transport the client goes straight to aiohttp, sending the same."""
    with serve_in_thread(echo) as server:
        async with make_http_client() as http:
            assert isinstance(http, PooledClient)
            assert http.native is not None
            client = ServiceClient("regime_detection", base_url=server.url, http=http)
            token = trace_id_var.set("trace-native-1")
            try:
                params = {"g": 60, "on": True, "none": None, "q": "a b&c=d"}
                got = await client.get_json("/x", params=params)
                posted = await client.post_json("/y", {"a": 1}, idempotency_key="k1")
            finally:
                trace_id_var.reset(token)
    assert got["query"].startswith("g=60&on=true&none=&q=")
    assert parse_qs(got["query"], keep_blank_values=True)["q"] == ["a b&c=d"]
    assert got["headers"][TRACE_HEADER.lower()] == "trace-native-1"
    assert got["headers"]["user-agent"] == USER_AGENT
    assert posted["body"] == '{"a":1}'
    assert posted["headers"]["content-type"] == "application/json"
    assert posted["headers"]["idempotency-key"] == "k1"


async def test_native_path_4xx_and_5xx() -> None:
    """4xx and 5xx are read on the native path as on the httpx path."""
    with serve_in_thread(echo) as server:
        async with make_http_client() as http:
            client = ServiceClient(
                "regime_detection",
                base_url=server.url,
                http=http,
                retry=RetryPolicy(max_attempts=1),
            )
            answered = await client.get_json("/x")
            with pytest.raises(UpstreamClientError) as missing:
                await client.get_json("/missing")
            with pytest.raises(ServiceUnavailableError) as busy:
                await client.get_json("/busy")
    assert answered["query"] == ""
    assert missing.value.status_code == 404
    assert busy.value.retry_after == 7
    assert busy.value.extra["upstream_status"] == 503
    assert client.breaker.snapshot().total_successes == 2


async def test_injected_transport_bypasses_the_native_path() -> None:
    """An injected transport gets every request (tests' seam): no native session is used."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    async with make_http_client(httpx.MockTransport(handler)) as http:
        assert isinstance(http, PooledClient)
        assert http.native is None
        client = ServiceClient("regime_detection", base_url="http://regime", http=http)
        assert await client.get_json("/x", params={"g": 60}) == {"ok": True}
    assert str(seen[0].url) == "http://regime/x?g=60"


def test_the_total_timeout_is_not_rounded_up() -> None:
    """aiohttp rounds timeouts of 5 s or more up to the next whole second: not ours, so a
    call ends at its deadline (5.9 s is not 6.x s)."""
    timeout = total_timeout(5.9)
    assert timeout.total is not None
    when = calculate_timeout_when(1000.25, timeout.total, timeout.ceil_threshold)
    assert when == pytest.approx(1006.15)
    assert calculate_timeout_when(1000.25, 5.9, aiohttp.ClientTimeout().ceil_threshold) == 1007
