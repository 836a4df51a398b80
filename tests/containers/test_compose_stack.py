"""The seed's docker-compose.yml run by a real Docker engine: built, up --wait, used, broken.

One project for the module, from a fresh copy of the repository; each test leaves the
stack as it found it (every service up).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.containers.compose import ComposeProject, NewProject, port_override
from tests.support import keys
from tests.support.servers import REPO, wait_until

pytestmark = pytest.mark.containers

PORTS = {"market-data": 8001, "regime-detection": 8002, "risk-management": 8003, "execution": 8004}
ENV_NAMES = {
    "market-data": "STACK_MARKET_DATA_URL",
    "regime-detection": "STACK_REGIME_URL",
    "risk-management": "STACK_RISK_URL",
    "execution": "STACK_EXECUTION_URL",
}
# The breaker's recovery is the default 30 s here (the real file, unchanged), plus start-up.
RECOVERY = 90.0


@pytest.fixture(scope="module")
def stack(new_project: NewProject) -> Iterator[ComposeProject]:
    project = new_project(["docker-compose.yml", port_override("ports.yml")], "stack")
    try:
        project.up()
        yield project
    finally:
        project.down()


def url(stack: ComposeProject, service: str) -> str:
    return stack.url(service, PORTS[service])


def trade(stack: ComposeProject, amount: float = 1000, **headers: str) -> httpx.Response:
    body = {"symbol": "BTC-USD", "side": "buy", "amount": amount}
    return httpx.post(
        url(stack, "execution") + "/api/v1/trade",
        json=body,
        headers={**keys.headers(), **headers},
        timeout=30,
    )


def fills(stack: ComposeProject) -> bool:
    try:
        answer = trade(stack, amount=100)
    except httpx.HTTPError:
        return False
    return answer.status_code == 201 and answer.json()["status"] == "FILLED"


def cash(stack: ComposeProject) -> float:
    body = httpx.get(
        url(stack, "execution") + "/api/v1/portfolio", headers=keys.headers(), timeout=30
    ).json()
    return float(body["cash"])


def order_ids(stack: ComposeProject) -> list[str]:
    """Every order in the ledger, following the cursor."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(
            url(stack, "execution") + "/api/v1/orders",
            params=params,
            headers=keys.headers(),
            timeout=30,
        )
        page.raise_for_status()
        body = page.json()
        ids += [o["order_id"] for o in body["orders"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


def healthy(stack: ComposeProject, service: str) -> bool:
    try:
        answer = httpx.get(url(stack, service) + "/health", timeout=5)
    except (httpx.HTTPError, RuntimeError):  # RuntimeError: no port while it restarts
        return False
    return answer.status_code == 200 and answer.json()["status"] == "healthy"


def test_the_seed_curl_is_filled(stack: ComposeProject) -> None:
    """The README's curl against the containers: 201 FILLED, sized by risk and regime."""
    response = trade(stack, amount=1000)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "FILLED"
    assert 0 < order["filled_amount"] <= min(1000, order["risk"]["max_amount"]) + 1e-9


def test_the_flow_tests_pass_against_the_containers(stack: ComposeProject) -> None:
    """tests/integration/test_flow.py, pointed at the containers by STACK_*_URL, passes."""
    # Without CI=true: there the flow tests that stop processes skip by design (they need
    # the stack the tests start themselves), which CI=true would turn into failures.
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {ENV_NAMES[name]: url(stack, name) for name in PORTS}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/integration/test_flow.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout, run.stdout[-2000:]


def test_one_trace_id_reaches_all_four_containers_logs(stack: ComposeProject) -> None:
    """An X-Trace-ID sent with a trade is in the JSON logs of all four containers."""
    trace_id = uuid.uuid4().hex
    response = trade(stack, amount=100, **{"X-Trace-ID": trace_id})
    assert response.status_code == 201, response.text

    def logged(service: str) -> bool:
        lines = stack.logs(service).splitlines()
        return any(
            json.loads(line).get("trace_id") == trace_id for line in lines if line.startswith("{")
        )

    wait_until(lambda: all(map(logged, PORTS)), timeout=30, interval=0.5, what="the trace ID")


def test_risk_stopped_is_a_503_without_a_fill_and_start_fills_again(stack: ComposeProject) -> None:
    """`compose stop risk-management`: 503 + Retry-After, cash unchanged; `start`: fills."""
    before = cash(stack)
    stack.compose("stop", "risk-management")
    try:
        response = trade(stack, amount=500)
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        problem = response.json()
        assert cash(stack) == pytest.approx(before)
        record = httpx.get(
            url(stack, "execution") + f"/api/v1/orders/{problem['order_id']}",
            headers=keys.headers(),
            timeout=30,
        ).json()
        assert record["status"] == "REJECTED"
        assert record["filled_amount"] == 0
    finally:
        stack.compose("start", "risk-management")
    wait_until(lambda: fills(stack), timeout=RECOVERY, interval=1.0, what="a fill after start")


def test_execution_restart_keeps_every_order(stack: ComposeProject) -> None:
    """`compose restart execution`: every order answered before is still in the ledger."""
    assert trade(stack, amount=100).status_code == 201
    before = order_ids(stack)
    stack.compose("restart", "execution")
    wait_until(lambda: healthy(stack, "execution"), timeout=RECOVERY, interval=0.5, what="up")
    after = order_ids(stack)
    assert len(before) >= 2
    assert set(before) <= set(after)


def test_redis_stopped_trades_still_fill(stack: ComposeProject) -> None:
    """`compose stop redis`: the gateway is degraded and trades still fill; back: healthy."""
    stack.compose("stop", "redis")
    try:
        response = trade(stack, amount=100)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "FILLED"
        gateway = httpx.get(url(stack, "market-data") + "/health", timeout=10).json()
        assert gateway["status"] == "degraded"
    finally:
        stack.compose("start", "redis")
    wait_until(
        lambda: healthy(stack, "market-data"), timeout=RECOVERY, interval=0.5, what="healthy"
    )
