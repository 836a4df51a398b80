"""The bare reference chain answers a trade through all its hops, like the real path."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest

from bench import bare_chain
from tests.support.servers import free_port, serve_in_thread


async def test_a_trade_crosses_every_bare_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    """trade -> approve -> price + regime -> ohlcv: the order carries the gateway's price."""
    ports = {name: free_port() for name in ("gateway", "regime", "risk", "execution")}
    monkeypatch.setenv("BARE_MARKET_DATA_URL", f"http://127.0.0.1:{ports['gateway']}")
    monkeypatch.setenv("BARE_REGIME_URL", f"http://127.0.0.1:{ports['regime']}")
    monkeypatch.setenv("BARE_RISK_URL", f"http://127.0.0.1:{ports['risk']}")
    factories = {
        "gateway": bare_chain.create_gateway,
        "regime": bare_chain.create_regime,
        "risk": bare_chain.create_risk,
        "execution": bare_chain.create_execution,
    }
    with ExitStack() as stack:
        for name, factory in factories.items():
            stack.enter_context(serve_in_thread(factory(), ports[name]))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['execution']}") as http:
            body = {"symbol": "BTC-USD", "side": "sell", "amount": 40.0}
            resp = await http.post("/api/v1/trade", json=body)
    assert resp.status_code == 201
    order = resp.json()
    assert (order["side"], order["filled_amount"], order["price"]) == ("sell", 40.0, 42000.5)
    assert order["risk"]["regime"] == "TRENDING"


async def test_hello_world_answers_a_constant() -> None:
    """The floor app answers its constant."""
    with serve_in_thread(bare_chain.create_hello()) as server:
        async with httpx.AsyncClient() as http:
            resp = await http.get(server.url + "/")
    assert resp.json() == {"hello": "world"}
