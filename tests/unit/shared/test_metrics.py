"""`/metrics`: per-app registries, route templates, the client families, the off switch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.breaker import CircuitBreaker
from shared.client import ServiceClient
from shared.errors import CircuitOpenError, ServiceUnavailableError, UpstreamClientError
from shared.metrics import AppMetrics
from shared.retry import RetryPolicy
from shared.settings import CommonSettings
from shared.tracing import TRACE_HEADER
from shared.transport import HttpxTransport
from tests.support.metrics import Scraped, parse_metrics
from tests.unit.shared.apps import app_with, client_of
from tests.unit.shared.fakes import FakeClock


def items_app(**options: Any) -> FastAPI:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        """Echo the item id."""
        return {"item": item_id}

    return app_with(router, **options)


async def scrape(client: httpx.AsyncClient) -> Scraped:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(response.text)


async def test_requests_are_counted_under_the_route_template() -> None:
    """Three requests to /items/{item_id} are one series of 3, with no concrete id in it."""
    async with client_of(items_app()) as client:
        for item in ("a-1", "b-2", "b-2"):
            assert (await client.get(f"/items/{item}")).status_code == 200
        page = await client.get("/metrics")
        scraped = parse_metrics(page.text)
    labels = {"method": "GET", "route": "/items/{item_id}"}
    assert scraped.total("http_requests_total", status="200", **labels) == 3
    assert scraped.total("http_request_duration_seconds_count", **labels) == 3
    assert scraped.types["http_request_duration_seconds"] == "histogram"
    assert "a-1" not in page.text
    assert "b-2" not in page.text


async def test_unknown_paths_share_one_label() -> None:
    """Paths no route matches are counted as route="unmatched", never as themselves."""
    async with client_of(items_app()) as client:
        await client.get("/nowhere/1")
        await client.get("/nowhere/2")
        scraped = await scrape(client)
    assert scraped.total("http_requests_total", route="unmatched", status="404") == 2
    assert not any("/nowhere" in r for r in scraped.label_values("http_requests_total", "route"))


async def test_invented_methods_share_one_label() -> None:
    """A method outside HTTP's usual set is counted as "other", never as itself."""
    async with client_of(items_app()) as client:
        await client.request("BREW", "/items/x")
        await client.request("PROPFIND-X", "/items/x")
        scraped = await scrape(client)
    assert scraped.label_values("http_requests_total", "method") == {"other"}
    assert scraped.total("http_requests_total", method="other") == 2


async def test_each_app_counts_only_its_own_requests() -> None:
    """Two apps in one process keep separate registries."""
    async with client_of(items_app()) as first, client_of(items_app()) as second:
        await first.get("/items/x")
        await first.get("/items/y")
        first_counts, second_counts = await scrape(first), await scrape(second)
    assert first_counts.total("http_requests_total", route="/items/{item_id}") == 2
    assert second_counts.total("http_requests_total", route="/items/{item_id}") == 0


async def test_observability_off_counts_nothing_but_keeps_trace_ids() -> None:
    """OBSERVABILITY=false: no request is counted, the trace ID is still adopted and echoed."""
    settings = CommonSettings(observability=False)
    trace_id = "0123456789abcdef0123456789abcdef"
    async with client_of(items_app(settings=settings)) as client:
        response = await client.get("/items/x", headers={TRACE_HEADER: trace_id})
        scraped = await scrape(client)
    assert response.headers[TRACE_HEADER] == trace_id
    assert scraped.total("http_requests_total") == 0


async def test_client_outcomes_and_breaker_state_are_exported() -> None:
    """Each attempt is counted by outcome; the breaker's state is 0 closed, 2 open."""
    answers = iter([200, 404, 503])

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), json={"detail": "x"})

    clock = FakeClock()
    client = ServiceClient(
        "risk_management",
        base_url="http://risk",
        transport=HttpxTransport(httpx.MockTransport(answer)),
        timeout=5.0,
        retry=RetryPolicy(attempts=1, initial_backoff=0.1, max_backoff=0.1),
        breaker=CircuitBreaker("risk", failure_threshold=1, recovery_timeout=30, clock=clock),
        clock=clock,
    )
    metrics = AppMetrics()
    metrics.clients = lambda: [client]
    await client.get_json("/ok")
    closed = parse_metrics(metrics.render().decode())
    with pytest.raises(UpstreamClientError):
        await client.get_json("/missing")
    with pytest.raises(ServiceUnavailableError):
        await client.get_json("/down")
    with pytest.raises(CircuitOpenError):
        await client.get_json("/refused")
    opened = parse_metrics(metrics.render().decode())
    assert closed.total("circuit_breaker_state", target="risk_management") == 0
    assert opened.total("circuit_breaker_state", target="risk_management") == 2
    target = {"target": "risk_management"}
    assert opened.total("upstream_requests_total", outcome="ok", **target) == 1
    assert opened.total("upstream_requests_total", outcome="client_error", **target) == 1
    assert opened.total("upstream_requests_total", outcome="server_error", **target) == 1
    assert opened.total("upstream_requests_total", outcome="circuit_open", **target) == 1
