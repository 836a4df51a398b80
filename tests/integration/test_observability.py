"""The live stack observed: /metrics counts what happened, one trace crosses all four."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.integration.stack import START_ORDER, Stack
from tests.support import keys
from tests.support.metrics import COMMON_FAMILIES, OWN_FAMILIES, Scraped, parse_metrics
from tests.support.otlp_collector import OtlpCollector
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def scrape(url: str) -> Scraped:
    """A service's /metrics, parsed."""
    response = httpx.get(url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse_metrics(response.text)


def trade(urls: dict[str, str], amount: float, **headers: str) -> httpx.Response:
    return httpx.post(
        urls["execution"] + "/api/v1/trade",
        json={"symbol": "BTC-USD", "side": "buy", "amount": amount},
        headers={**keys.headers(), **headers},
        timeout=15,
    )


def test_metrics_count_exactly_the_trades(urls: dict[str, str]) -> None:
    """After N trades every service exports its families, routes as templates, and the
    execution counters moved by exactly the orders and the notional filled."""
    before, risk_before = scrape(urls["execution"]), scrape(urls["risk-management"])
    orders = [trade(urls, amount).json() for amount in (100, 150, 200)]
    filled = [o for o in orders if o["status"] == "FILLED"]
    assert len(filled) == 3, orders

    scraped = {name: scrape(urls[name]) for name in START_ORDER}
    for name, page in scraped.items():
        for family, kind in {**COMMON_FAMILIES, **OWN_FAMILIES[name]}.items():
            assert page.types.get(family) == kind, (name, family)
        routes = page.label_values("http_requests_total", "route")
        assert routes, name
        for route in routes:
            assert "BTC-USD" not in route, (name, route)
            assert route.startswith(("/", "unmatched")), (name, route)
    assert "/api/v1/ohlcv/{symbol}" in scraped["market-data"].label_values(
        "http_requests_total", "route"
    )

    after, risk_after = scrape(urls["execution"]), scrape(urls["risk-management"])

    def grew(name: str, old: Scraped, new: Scraped, **labels: str) -> float:
        return new.total(name, **labels) - old.total(name, **labels)

    assert grew("execution_orders_total", before, after, status="FILLED") == len(filled)
    assert grew("execution_fill_notional_usd_total", before, after) == pytest.approx(
        sum(o["filled_amount"] for o in filled)
    )
    assert grew("http_requests_total", before, after, route="/api/v1/trade") == 3
    assert grew("risk_decisions_total", risk_before, risk_after, approved="true") == 3
    assert after.total("execution_trading_state", state="ACTIVE") == 1
    assert after.total("circuit_breaker_state", target="risk_management") == 0


def test_traceparent_is_the_trace_everywhere(
    own_stack: Stack, urls: dict[str, str], otlp_collector: OtlpCollector
) -> None:
    """A trade's traceparent comes back as X-Trace-ID, is in the order and in all four
    services' logs, and each service exports its spans of that trace over OTLP."""
    trace_id = os.urandom(16).hex()
    response = trade(urls, 120, traceparent=f"00-{trace_id}-{os.urandom(8).hex()}-01")
    assert response.status_code == 201, response.text
    assert response.headers["X-Trace-ID"] == trace_id
    assert response.json()["trace_id"] == trace_id

    def logged_everywhere() -> bool:
        return all(
            any(
                json.loads(line).get("trace_id") == trace_id
                for line in own_stack.log_path(name).read_text().splitlines()
                if line.startswith("{")
            )
            for name in START_ORDER
        )

    wait_until(logged_everywhere, timeout=10, what="the trace id in all four logs")

    def spans_from_all_four() -> bool:
        return {s.service for s in otlp_collector.spans(trace_id)} >= set(START_ORDER)

    wait_until(spans_from_all_four, timeout=15, what="spans of all four services")
    spans = otlp_collector.spans(trace_id)
    trade_span = next(s for s in spans if s.name == "POST /api/v1/trade")
    assert trade_span.service == "execution"
    # The risk service's span is a child of execution's: the context crossed the hop.
    approve = next(s for s in spans if s.name == "POST /api/v1/approve-trade")
    assert approve.parent_span_id == trade_span.span_id
