"""The seed's failure scenarios, one at a time, each followed by recovery."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.stack import Stack
from tests.integration.test_flow import trade
from tests.support import keys
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def cash(urls: dict[str, str]) -> float:
    body = httpx.get(
        urls["execution"] + "/api/v1/portfolio", headers=keys.headers(), timeout=10
    ).json()
    return float(body["cash"])


def logged(stack: Stack, name: str, text: str) -> bool:
    return text in stack.log_path(name).read_text()


@pytest.fixture
def stopped(own_stack: Stack, request: pytest.FixtureRequest) -> Iterator[str]:
    """Stop the named service for one test and start it again afterwards."""
    name: str = request.param
    own_stack.stop(name)
    try:
        yield name
    finally:
        own_stack.start(name)


@pytest.mark.parametrize("stopped", ["market-data"], indirect=True)
def test_gateway_down_trades_still_fill_from_the_direct_source(
    own_stack: Stack, urls: dict[str, str], stopped: str
) -> None:
    """With the gateway stopped, risk and regime read the market directly; trades fill."""
    response = trade(urls, amount=300)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "FILLED"


def test_gateway_is_used_again_once_it_is_back(own_stack: Stack, urls: dict[str, str]) -> None:
    """After a gateway restart, a trade's trace ID reaches the gateway's log again."""
    own_stack.stop("market-data")
    own_stack.start("market-data")
    trace_id = uuid.uuid4().hex

    def reaches_gateway() -> bool:
        response = trade(urls, amount=100, **{"X-Trace-ID": trace_id})
        return response.status_code == 201 and logged(own_stack, "market-data", trace_id)

    wait_until(reaches_gateway, timeout=20, what="a trade served through the gateway")


@pytest.mark.parametrize("stopped", ["regime-detection"], indirect=True)
def test_regime_down_trades_are_sized_as_unknown(
    own_stack: Stack, urls: dict[str, str], stopped: str
) -> None:
    """With regime stopped, risk sizes as UNKNOWN and says the regime service was unavailable."""
    response = trade(urls, amount=1000)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["risk"]["regime"] == "UNKNOWN"
    assert "regime" in order["risk"]["reason"].lower()
    assert "unavailable" in order["risk"]["reason"].lower()


def test_risk_down_refuses_to_trade_then_recovers(own_stack: Stack, urls: dict[str, str]) -> None:
    """Risk stopped: 503 with Retry-After, no fill, cash unchanged; restarted: trades fill."""
    before = cash(urls)
    own_stack.stop("risk-management")
    try:
        response = trade(urls, amount=500)
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["content-type"].startswith("application/problem+json")
        assert cash(urls) == pytest.approx(before)
    finally:
        own_stack.start("risk-management")

    def fills() -> bool:
        answer = trade(urls, amount=100)
        return answer.status_code == 201 and answer.json()["status"] == "FILLED"

    # The breaker's recovery timeout is 1 s in this stack (BREAKER_RECOVERY_SECONDS).
    wait_until(fills, timeout=20, what="a filled trade after risk came back")


def test_redis_down_gateway_degraded_trades_still_fill(
    own_stack: Stack, urls: dict[str, str]
) -> None:
    """Redis stopped: the gateway says degraded and trades still fill; back: healthy."""
    own_stack.redis.stop()
    try:
        wait_until(
            lambda: own_stack.health("market-data")["status"] == "degraded",
            what="gateway degraded",
        )
        response = trade(urls, amount=100)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "FILLED"
    finally:
        own_stack.redis.start_again()
    wait_until(
        lambda: own_stack.health("market-data")["status"] == "healthy",
        timeout=20,
        what="gateway healthy again",
    )
