"""`GET /api/v1/events`: the live stream the console reads, over a real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
from execution.app import create_app
from execution.config import Settings

from shared.market.source import MarketSource
from tests.support import keys
from tests.support.servers import serve_in_thread
from tests.unit.execution.stubs import FakeSource, RiskStub


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) pairs as the stream sends them; keep-alive comments skipped."""
    kind, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()
        elif line == "" and data:
            yield kind, json.loads(data)
            kind, data = "message", ""


async def next_event(events: AsyncIterator[tuple[str, Any]], kind: str, within: float) -> Any:
    """The data of the next `kind` event, waiting at most `within` seconds for it."""

    async def find() -> Any:
        async for seen, data in events:
            if seen == kind:
                return data
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(find(), within)


async def test_an_order_event_follows_a_trade_within_a_second(
    settings_for: Callable[..., Settings], risk: RiskStub, dead_url: str
) -> None:
    """A client on the stream gets health at once, then the order, then the portfolio."""
    app = create_app(
        settings_for(regime_url=dead_url), market_source=cast(MarketSource, FakeSource())
    )
    with serve_in_thread(app) as server:
        async with (
            httpx.AsyncClient(headers=keys.headers(), base_url=server.url, timeout=10) as client,
            client.stream("GET", "/api/v1/events") as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = sse_events(stream)
            health = await next_event(events, "health", within=10)
            assert set(health["services"]) == {
                "execution",
                "market_data",
                "regime_detection",
                "risk_management",
            }
            assert health["services"]["execution"]["status"] == "healthy"
            # The Risk stub has no /health; nothing listens at the regime service's URL.
            assert health["services"]["risk_management"]["status"] == "unknown"
            assert health["services"]["regime_detection"]["status"] == "unreachable"
            trade = await client.post(
                "/api/v1/trade", json={"symbol": "BTC-USD", "side": "buy", "amount": 1000}
            )
            assert trade.status_code == 201
            order = await next_event(events, "order", within=1.0)
            assert order == trade.json()
            portfolio = await next_event(events, "portfolio", within=5)
            assert (portfolio["cash"], portfolio["trigger"]) == (9000.0, "fill")


async def test_trading_state_changes_and_refusals_are_streamed(
    settings_for: Callable[..., Settings], risk: RiskStub, dead_url: str
) -> None:
    """A halt reaches the stream as `trading_state`, the refused trade as a REJECTED order."""
    app = create_app(
        settings_for(regime_url=dead_url), market_source=cast(MarketSource, FakeSource())
    )
    with serve_in_thread(app) as server:
        async with (
            httpx.AsyncClient(headers=keys.headers(), base_url=server.url, timeout=10) as client,
            client.stream("GET", "/api/v1/events") as stream,
        ):
            events = sse_events(stream)
            await next_event(events, "health", within=10)
            halt = {"state": "HALTED", "reason": "exchange incident"}
            assert (await client.put("/api/v1/trading-state", json=halt)).status_code == 200
            state = await next_event(events, "trading_state", within=5)
            assert (state["state"], state["reason"]) == ("HALTED", "exchange incident")
            refused = await client.post(
                "/api/v1/trade", json={"symbol": "BTC-USD", "side": "buy", "amount": 10}
            )
            assert refused.status_code == 409
            order = await next_event(events, "order", within=5)
            assert order["status"] == "REJECTED"
            assert "exchange incident" in order["reason"]
    assert risk.requests == []
