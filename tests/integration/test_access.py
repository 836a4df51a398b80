"""Access control on the four live services: keys, roles, scoped idempotency, no leaks.

The stack runs with `API_KEYS="admin:<a>,trader:<t>,trader:<t2>,viewer:<v>,service:<s>"`
and `SERVICE_KEY=<s>` on all four (tests/support/keys.py).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from shared.auth import Role
from tests.integration.stack import START_ORDER, Stack
from tests.support import keys
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

TRADE = {"symbol": "BTC-USD", "side": "buy", "amount": 100}
PORTFOLIO = {"cash": 1e15, "positions": {}}
APPROVE = {**TRADE, "amount": 1e12, "current_portfolio": PORTFOLIO}
# Every answer the tests saw, to check that none of them holds a key.
SEEN: list[httpx.Response] = []


def call(
    method: str, url: str, role: Role | None = None, index: int = 0, **kwargs: Any
) -> httpx.Response:
    """One request with the key of `role` (none when `role` is None)."""
    headers = {**(keys.headers(role, index) if role else {}), **kwargs.pop("headers", {})}
    response = httpx.request(method, url, headers=headers, timeout=15, **kwargs)
    SEEN.append(response)
    return response


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        ("market-data", "GET", "/api/v1/price/BTC-USD"),
        ("market-data", "GET", "/api/v1/ohlcv/BTC-USD?periods=5"),
        ("regime-detection", "GET", "/api/v1/regime/BTC-USD"),
        ("risk-management", "POST", "/api/v1/approve-trade"),
        ("execution", "POST", "/api/v1/trade"),
        ("execution", "GET", "/api/v1/orders"),
        ("execution", "GET", "/api/v1/portfolio"),
    ],
)
def test_no_key_is_a_401_on_every_service(
    urls: dict[str, str], service: str, method: str, path: str
) -> None:
    """Without X-API-Key each service answers 401 with WWW-Authenticate, before any work."""
    body = APPROVE if path.endswith("approve-trade") else TRADE
    response = call(method, urls[service] + path, json=body if method == "POST" else None)
    assert response.status_code == 401, response.text
    assert "X-API-Key" in response.headers["WWW-Authenticate"]
    assert response.headers["content-type"] == "application/problem+json"


def test_an_unknown_key_is_a_401(urls: dict[str, str]) -> None:
    """A key no service knows is a 401 like no key."""
    wrong = {"X-API-Key": "not-a-key-" + uuid.uuid4().hex}
    response = call("GET", urls["execution"] + "/api/v1/orders", headers=wrong)
    assert response.status_code == 401


def test_open_endpoints_need_no_key(urls: dict[str, str]) -> None:
    """/health (GET and HEAD), /metrics, /docs and /openapi.json need no key on all four."""
    for name in START_ORDER:
        for path in ("/health", "/metrics", "/docs", "/openapi.json"):
            assert call("GET", urls[name] + path).status_code == 200, (name, path)
        assert call("HEAD", urls[name] + "/health").status_code == 200, name


def test_viewer_may_read_but_not_trade(urls: dict[str, str]) -> None:
    """A viewer key reads orders, portfolio, prices and regimes (200) and cannot trade (403)."""
    refused = call("POST", urls["execution"] + "/api/v1/trade", Role.VIEWER, json=TRADE)
    assert refused.status_code == 403, refused.text
    assert "viewer" in refused.json()["detail"]
    for name, path in [
        ("execution", "/api/v1/orders"),
        ("execution", "/api/v1/portfolio"),
        ("market-data", "/api/v1/price/BTC-USD"),
        ("regime-detection", "/api/v1/regime/BTC-USD"),
    ]:
        assert call("GET", urls[name] + path, Role.VIEWER).status_code == 200, path


def test_trader_trades_through_all_four_hops(own_stack: Stack, urls: dict[str, str]) -> None:
    """A trader's buy is 201 FILLED: Execution → Risk → Regime → gateway, each hop keyed."""
    trace_id = uuid.uuid4().hex
    response = call(
        "POST",
        urls["execution"] + "/api/v1/trade",
        Role.TRADER,
        json=TRADE,
        headers={"X-Trace-ID": trace_id},
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "FILLED", order
    assert order["risk"]["risk_metrics"]["volatility_source"] == "regime"
    shown = call("GET", urls["execution"] + f"/api/v1/orders/{order['order_id']}", Role.VIEWER)
    assert shown.json() == order | {"account": shown.json()["account"]}
    # Each service logged its part of this trade under the caller's role and key id.
    callers = {
        "execution": f"trader:{keys.key_id(Role.TRADER)}",
        "risk-management": f"service:{keys.key_id(Role.SERVICE)}",
        "regime-detection": f"service:{keys.key_id(Role.SERVICE)}",
        "market-data": f"service:{keys.key_id(Role.SERVICE)}",
    }

    def accessed(name: str) -> bool:
        for line in own_stack.log_path(name).read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                mine = entry.get("trace_id") == trace_id and entry["logger"] == "shared.access"
                if mine and entry["message"].endswith(callers[name]):
                    return True
        return False

    wait_until(lambda: all(map(accessed, callers)), timeout=10, what="each hop's access line")


def test_approve_trade_takes_a_claimed_portfolio_only_from_a_service(urls: dict[str, str]) -> None:
    """Risk refuses a trader's claimed portfolio (403) and sizes the service key's (200)."""
    url = urls["risk-management"] + "/api/v1/approve-trade"
    assert call("POST", url, Role.TRADER, json=APPROVE).status_code == 403
    assert call("POST", url, Role.VIEWER, json=APPROVE).status_code == 403
    served = call("POST", url, Role.SERVICE, json=APPROVE)
    assert served.status_code == 200, served.text
    assert call("POST", url, Role.ADMIN, json=APPROVE).status_code == 200


def test_the_gateway_and_regime_serve_the_service_key(urls: dict[str, str]) -> None:
    """The key the services send each other reads prices, candles and regimes."""
    for name, path in [
        ("market-data", "/api/v1/price/BTC-USD"),
        ("market-data", "/api/v1/ohlcv/BTC-USD?periods=5"),
        ("regime-detection", "/api/v1/regime/BTC-USD"),
    ]:
        assert call("GET", urls[name] + path, Role.SERVICE).status_code == 200, path
    orders = call("GET", urls["execution"] + "/api/v1/orders", Role.SERVICE)
    assert orders.status_code == 403


def test_trading_state_is_set_by_admin_only(urls: dict[str, str]) -> None:
    """PUT /api/v1/trading-state: a trader gets 403, the admin 200."""
    url = urls["execution"] + "/api/v1/trading-state"
    current = call("GET", url, Role.VIEWER)
    assert current.status_code == 200, current.text
    state = current.json()["state"]
    body = {"state": state, "reason": "access test"}
    assert call("PUT", url, Role.TRADER, json=body).status_code == 403
    assert call("PUT", url, Role.ADMIN, json=body).status_code == 200


def test_idempotency_keys_belong_to_one_api_key(urls: dict[str, str]) -> None:
    """The same Idempotency-Key and body from two trader keys make two orders."""
    url = urls["execution"] + "/api/v1/trade"
    idem = {"Idempotency-Key": f"scoped-{uuid.uuid4()}"}
    first = call("POST", url, Role.TRADER, 0, json=TRADE, headers=idem)
    again = call("POST", url, Role.TRADER, 0, json=TRADE, headers=idem)
    other = call("POST", url, Role.TRADER, 1, json=TRADE, headers=idem)
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert other.json()["order_id"] != first.json()["order_id"]
    assert "Idempotent-Replayed" not in other.headers


def test_no_key_in_logs_health_or_error_bodies(own_stack: Stack, urls: dict[str, str]) -> None:
    """No key value is in any service's log, /health or any answer seen here."""
    # A trade and a refusal of each kind, so the logs have something to say about keys.
    call("POST", urls["execution"] + "/api/v1/trade", Role.TRADER, json=TRADE)
    call("POST", urls["execution"] + "/api/v1/trade", Role.VIEWER, json=TRADE)
    call("GET", urls["execution"] + "/api/v1/orders", headers={"X-API-Key": keys.key() + "x"})
    health = [call("GET", urls[name] + "/health") for name in START_ORDER]
    # The service logs the refusal of the viewer's trade, with role and key id only.
    viewer_id = keys.key_id(Role.VIEWER)

    def refusal_logged() -> bool:
        return f"viewer key {viewer_id}" in own_stack.log_path("execution").read_text()

    wait_until(refusal_logged, timeout=10, what="the refusal in the execution log")
    logs = {name: own_stack.log_path(name).read_text() for name in START_ORDER}
    assert all(logs.values())
    secrets = keys.all_values()
    for name, text in logs.items():
        for line in text.splitlines():
            assert not any(secret in line for secret in secrets), (name, line)
    for response in [*SEEN, *health]:
        assert not any(secret in response.text for secret in secrets), response.url
        assert not any(secret in json.dumps(dict(response.headers)) for secret in secrets)
    for response in health:
        body = response.text
        assert "127.0.0.1" not in body
        assert "http://" not in body
        assert viewer_id not in body
