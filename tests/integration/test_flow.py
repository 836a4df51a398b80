"""The seed's flow across the four live services."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from shared.auth import Role
from tests.integration.stack import START_ORDER, Stack
from tests.support import keys
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def trade(
    urls: dict[str, str], amount: float = 1000, side: str = "buy", **headers: str
) -> httpx.Response:
    return httpx.post(
        urls["execution"] + "/api/v1/trade",
        json={"symbol": "BTC-USD", "side": side, "amount": amount},
        headers={**keys.headers(Role.TRADER), **headers},
        timeout=15,
    )


def test_all_four_services_are_healthy(urls: dict[str, str]) -> None:
    """Each service's /health answers 200 healthy."""
    for name in START_ORDER:
        body = httpx.get(urls[name] + "/health", timeout=5).json()
        assert body["status"] == "healthy", (name, body)


def test_trade_is_filled_with_a_size_set_by_risk_and_regime(urls: dict[str, str]) -> None:
    """A buy is answered 201 FILLED, sized by risk, with the regime risk saw."""
    response = trade(urls, amount=1000)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "FILLED"
    risk = order["risk"]
    assert risk["approved"] is True
    assert risk["regime"] in {"TRENDING", "CHOPPY", "VOLATILE"}  # UNKNOWN: regime failed
    assert order["filled_amount"] == pytest.approx(min(1000, risk["max_amount"]), abs=1e-8)
    assert order["quantity"] > 0
    assert order["price"] > 0


def test_one_trace_id_crosses_all_four_services(own_stack: Stack, urls: dict[str, str]) -> None:
    """The X-Trace-ID sent with a trade appears in the log lines of all four services."""
    trace_id = uuid.uuid4().hex
    response = trade(urls, amount=200, **{"X-Trace-ID": trace_id})
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

    wait_until(logged_everywhere, timeout=10, what="the trace ID in all four logs")
