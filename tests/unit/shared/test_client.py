"""ServiceClient: safe retries, bounded attempts and time, the breaker, trace forwarding."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

import httpx
import pytest

from shared.breaker import BreakerState, CircuitBreaker
from shared.client import ServiceClient
from shared.discovery import UnknownServiceError
from shared.errors import CircuitOpenError, ServiceUnavailableError, UpstreamClientError
from shared.retry import RetryPolicy
from shared.settings import CommonSettings
from shared.tracing import TRACE_HEADER, trace_id_var
from shared.transport import HttpxTransport
from tests.unit.shared.fakes import FakeClock, FakeSleep

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
Factory = Callable[..., ServiceClient]


class Recorder:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(
        self,
        *outcomes: int | Exception,
        clock: FakeClock | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []
        self.clock = clock
        self.elapse = 0.0
        self.headers = {"Retry-After": retry_after} if retry_after else {}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.clock is not None:
            self.clock.advance(self.elapse)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        body = {"ok": outcome < 400, "detail": f"said {outcome}"}
        return httpx.Response(outcome, json=body, headers=self.headers if outcome >= 500 else {})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleep(clock: FakeClock) -> FakeSleep:
    return FakeSleep(clock)


@pytest.fixture
def make(clock: FakeClock, sleep: FakeSleep) -> Factory:
    def factory(
        handler: Handler,
        *,
        max_attempts: int = 3,
        timeout: float = 5.0,
        threshold: int = 5,
        recovery: float = 30.0,
    ) -> ServiceClient:
        breaker = CircuitBreaker(
            "market_data", failure_threshold=threshold, recovery_timeout=recovery, clock=clock
        )
        return ServiceClient(
            "market_data",
            base_url="http://market",
            transport=HttpxTransport(httpx.MockTransport(handler)),
            timeout=timeout,
            retry=RetryPolicy(attempts=max_attempts, initial_backoff=0.1, max_backoff=1.0),
            breaker=breaker,
            sleep=sleep,
            clock=clock,
            jitter=lambda: 1.0,  # the whole backoff, no less: exact waits to assert
        )

    return factory


def read_timeout() -> httpx.ReadTimeout:
    return httpx.ReadTimeout("read timed out")


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


async def test_half_open_lets_exactly_one_of_20_concurrent_calls_through(
    make: Factory, clock: FakeClock
) -> None:
    """In HALF_OPEN, 20 concurrent calls put exactly one request on the transport."""
    entered, release = asyncio.Event(), asyncio.Event()
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        entered.set()
        await release.wait()
        return httpx.Response(200, json={"ok": True})

    client = make(handler, threshold=1, recovery=10.0)
    client.breaker.record_failure()
    clock.advance(10.0)
    assert client.breaker.state is BreakerState.HALF_OPEN

    tasks = [asyncio.create_task(client.get_json("/x")) for _ in range(20)]
    await entered.wait()
    for _ in range(1000):  # let the other 19 run to completion; no time passes
        if sum(task.done() for task in tasks) == 19:
            break
        await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert len(seen) == 1
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 19
    assert results.count({"ok": True}) == 1
    assert client.breaker.snapshot().state is BreakerState.CLOSED


async def test_cancelled_probe_frees_the_slot(make: Factory, clock: FakeClock) -> None:
    """A probe cancelled mid-call lets the next caller probe instead of locking the breaker."""
    entered = asyncio.Event()
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            entered.set()
            await asyncio.Event().wait()  # hangs until cancelled
        return httpx.Response(200, json={"ok": True})

    client = make(handler, threshold=1, recovery=10.0)
    client.breaker.record_failure()
    clock.advance(10.0)
    probe = asyncio.create_task(client.get_json("/x"))
    await entered.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert await client.get_json("/x") == {"ok": True}
    assert calls == 2


async def test_4xx_never_opens_the_breaker(make: Factory) -> None:
    """4xx answers raise UpstreamClientError, are not retried, and never trip the breaker."""
    recorder = Recorder(404)
    client = make(recorder, threshold=2)
    for _ in range(10):
        with pytest.raises(UpstreamClientError) as info:
            await client.get_json("/missing")
        assert info.value.status_code == 404
        assert info.value.detail == "said 404"
        assert not isinstance(info.value, ServiceUnavailableError)
    assert len(recorder.requests) == 10
    assert client.breaker.state is BreakerState.CLOSED
    assert client.breaker.snapshot().total_failures == 0


async def test_4xx_resets_consecutive_failures(make: Factory) -> None:
    """A 4xx between 5xx answers counts as the target answering, so the breaker stays CLOSED."""
    recorder = Recorder(500, 422, 500, 422, 500)
    client = make(recorder, threshold=2, max_attempts=1)
    for _ in range(5):
        with pytest.raises((ServiceUnavailableError, UpstreamClientError)):
            await client.get_json("/x")
    assert client.breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("first", [connect_error(), read_timeout(), 502, 503, 504])
async def test_get_retried_then_succeeds(
    make: Factory, sleep: FakeSleep, first: int | Exception
) -> None:
    """A GET that fails with a connect error, a timeout or 502/503/504 is retried and succeeds."""
    recorder = Recorder(first, 200)
    client = make(recorder)
    assert await client.get_json("/x") == {"ok": True, "detail": "said 200"}
    assert len(recorder.requests) == 2
    assert len(sleep.delays) == 1


async def test_get_not_retried_on_500(make: Factory) -> None:
    """A 500 is a failure but not one a retry can fix: one attempt, ServiceUnavailableError."""
    recorder = Recorder(500, 200)
    client = make(recorder)
    with pytest.raises(ServiceUnavailableError) as info:
        await client.get_json("/x")
    assert info.value.extra["upstream_status"] == 500
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("first", [503, read_timeout()])
async def test_post_without_key_not_retried(make: Factory, first: int | Exception) -> None:
    """A POST without Idempotency-Key is sent once on 503 or a read timeout (it may have acted)."""
    recorder = Recorder(first, 200)
    client = make(recorder)
    with pytest.raises(ServiceUnavailableError):
        await client.post_json("/trade", {"amount": 1})
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("first", [503, read_timeout()])
async def test_post_with_key_retried(make: Factory, first: int | Exception) -> None:
    """A POST with an Idempotency-Key is retried on 503 or a read timeout, key on every try."""
    recorder = Recorder(first, 200)
    client = make(recorder)
    assert await client.post_json("/trade", {"amount": 1}, idempotency_key="k-1") == {
        "ok": True,
        "detail": "said 200",
    }
    assert [r.headers["Idempotency-Key"] for r in recorder.requests] == ["k-1", "k-1"]
    assert [r.content for r in recorder.requests] == [b'{"amount":1}'] * 2


async def test_post_retried_on_connect_error(make: Factory) -> None:
    """A POST whose connection was refused (nothing sent) is retried even without a key."""
    recorder = Recorder(connect_error(), 201)
    client = make(recorder)
    assert (await client.post_json("/trade", {"amount": 1}))["ok"] is True
    assert len(recorder.requests) == 2
    assert "Idempotency-Key" not in recorder.requests[0].headers


async def test_attempts_bounded_by_max_attempts(make: Factory, sleep: FakeSleep) -> None:
    """A target that keeps answering 503 gets exactly max_attempts tries, with growing backoff."""
    recorder = Recorder(503)
    client = make(recorder, max_attempts=4, timeout=60.0, threshold=100)
    with pytest.raises(ServiceUnavailableError) as info:
        await client.get_json("/x")
    assert info.value.extra["upstream_status"] == 503
    assert len(recorder.requests) == 4
    assert sleep.delays == pytest.approx([0.1, 0.2, 0.4])


async def test_total_time_bounded_by_timeout(
    make: Factory, clock: FakeClock, sleep: FakeSleep
) -> None:
    """Retries stop before the call's timeout: attempts plus backoff never pass the deadline."""
    recorder = Recorder(503, clock=clock)
    recorder.elapse = 0.15
    client = make(recorder, max_attempts=10, timeout=1.0, threshold=100)
    started = clock()
    with pytest.raises(ServiceUnavailableError):
        await client.get_json("/x")
    assert clock() - started <= 1.0
    assert 1 < len(recorder.requests) < 10
    timeouts = [r.extensions["timeout"]["read"] for r in recorder.requests]
    assert timeouts[0] == pytest.approx(1.0)
    assert timeouts == sorted(timeouts, reverse=True)


async def test_retry_after_is_waited_when_longer_than_the_backoff(
    make: Factory, sleep: FakeSleep
) -> None:
    """A 503 saying Retry-After: 2 is retried after 2 s, not after the 0.1 s backoff."""
    recorder = Recorder(503, 200, retry_after="2")
    client = make(recorder)
    assert (await client.get_json("/x"))["ok"] is True
    assert sleep.delays == [2.0]


async def test_retry_after_past_the_deadline_ends_the_call_at_once(
    make: Factory, sleep: FakeSleep
) -> None:
    """A Retry-After beyond the call's timeout is not waited: the 503 says when, to our caller."""
    recorder = Recorder(503, 200, retry_after="30")
    client = make(recorder, timeout=5.0)
    with pytest.raises(ServiceUnavailableError) as info:
        await client.get_json("/x")
    assert info.value.retry_after == 30
    assert len(recorder.requests) == 1
    assert sleep.delays == []


async def test_per_call_timeout_overrides_default(make: Factory) -> None:
    """The `timeout` argument of a call is the budget its transport request gets."""
    recorder = Recorder(200)
    client = make(recorder, timeout=5.0)
    await client.get_json("/x", timeout=0.75)
    assert recorder.requests[0].extensions["timeout"]["read"] == pytest.approx(0.75)


async def test_attempt_cut_at_deadline_even_if_transport_ignores_timeouts(make: Factory) -> None:
    """A transport that never answers is cut off at the call's deadline, not waited on forever."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client = make(hang, max_attempts=1)
    # The outer bound turns a missing cut-off into a failure instead of a hung test.
    async with asyncio.timeout(5.0):
        with pytest.raises(ServiceUnavailableError, match="timed out"):
            await client.get_json("/x", timeout=0.05)
    assert client.breaker.snapshot().total_failures == 1


async def test_trace_id_forwarded(make: Factory) -> None:
    """The current trace ID goes out as X-Trace-ID; none is invented when there is none."""
    recorder = Recorder(200)
    client = make(recorder)
    await client.get_json("/x")
    token = trace_id_var.set("trace-abc-123")
    try:
        await client.post_json("/y", {"a": 1})
    finally:
        trace_id_var.reset(token)
    assert TRACE_HEADER not in recorder.requests[0].headers
    assert recorder.requests[1].headers[TRACE_HEADER] == "trace-abc-123"


async def test_open_breaker_fails_fast_without_transport(make: Factory, clock: FakeClock) -> None:
    """With the breaker OPEN a call raises CircuitOpenError with Retry-After and sends nothing."""
    recorder = Recorder(503)
    client = make(recorder, max_attempts=1, threshold=2, recovery=30.0)
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError):
            await client.get_json("/x")
    clock.advance(10.0)
    with pytest.raises(CircuitOpenError) as info:
        await client.get_json("/x")
    assert len(recorder.requests) == 2
    assert info.value.headers == {"Retry-After": "20"}
    assert info.value.status == 503


async def test_breaker_opening_mid_retries_stops_them(make: Factory) -> None:
    """Once retries open the breaker, the next attempt is refused without a request."""
    recorder = Recorder(503)
    client = make(recorder, max_attempts=5, threshold=2, timeout=60.0)
    with pytest.raises(CircuitOpenError):
        await client.get_json("/x")
    assert len(recorder.requests) == 2


async def test_unknown_service_fails_at_construction() -> None:
    """An unknown service name fails when the client is built, not on the first call."""
    transport = HttpxTransport(httpx.MockTransport(Recorder(200)))
    with pytest.raises(UnknownServiceError):
        ServiceClient(
            "markets",
            transport=transport,
            timeout=1.0,
            retry=RetryPolicy(attempts=1, initial_backoff=0.1, max_backoff=0.1),
            breaker=CircuitBreaker("markets", failure_threshold=1, recovery_timeout=1.0),
        )
    with pytest.raises(UnknownServiceError):
        ServiceClient.from_settings("markets", CommonSettings(), transport=transport)


async def test_from_settings_uses_url_and_knobs(clock: FakeClock, sleep: FakeSleep) -> None:
    """from_settings takes the URL, timeout, attempts and breaker knobs from the settings."""
    settings = CommonSettings(
        risk_url="http://risk:9003/",
        service_timeout_seconds=2.5,
        retry_max_attempts=2,
        breaker_failure_threshold=7,
        breaker_recovery_seconds=0.5,
    )
    recorder = Recorder(503)
    client = ServiceClient.from_settings(
        "risk_management",
        settings,
        transport=HttpxTransport(httpx.MockTransport(recorder)),
        clock=clock,
        sleep=sleep,
    )
    with pytest.raises(ServiceUnavailableError):
        await client.get_json("/health")
    assert str(recorder.requests[0].url) == "http://risk:9003/health"
    assert len(recorder.requests) == 2
    assert client.timeout == 2.5
    assert client.breaker.failure_threshold == 7
    assert client.breaker.recovery_timeout == 0.5


async def test_the_service_key_goes_with_every_call() -> None:
    """From settings, SERVICE_KEY is sent as X-API-Key on GETs, POSTs and retries."""
    recorder = Recorder(503, 200)
    settings = CommonSettings(service_key="k" * 24, retry_max_attempts=2)
    client = ServiceClient.from_settings(
        "market_data",
        settings,
        transport=HttpxTransport(httpx.MockTransport(recorder)),
        sleep=no_wait,
    )
    await client.get_json("/a")
    await client.post_json("/b", {}, idempotency_key="i")
    await client.get_json("/c")
    assert [r.headers.get("X-API-Key") for r in recorder.requests] == ["k" * 24] * 4


async def test_no_service_key_sends_no_key_header() -> None:
    """Without SERVICE_KEY nothing is sent in X-API-Key (the target answers 401)."""
    recorder = Recorder(200)
    settings = CommonSettings(service_key=None)
    client = ServiceClient.from_settings(
        "market_data", settings, transport=HttpxTransport(httpx.MockTransport(recorder))
    )
    await client.get_json("/a")
    assert "X-API-Key" not in recorder.requests[0].headers


async def no_wait(seconds: float) -> None:
    return None
