"""One decision's upstream calls do not grow with the number of held symbols."""

from __future__ import annotations

from collections import Counter

import httpx
from risk_management.config import Settings
from risk_management.schemas import ApproveTradeRequest
from risk_management.service import RiskService
from starlette.types import ASGIApp

from shared.client import ServiceClient
from shared.market.client import MarketDataClient
from shared.transport import HttpxTransport
from tests.support.asgi import lifespan_app
from tests.unit.risk_management.upstreams import RegimeStub, gateway, simulator


class Counting(httpx.AsyncBaseTransport):
    """Routes by host to in-process apps and counts every request by host and path."""

    def __init__(self, apps: dict[str, ASGIApp]) -> None:
        self.apps = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[f"{request.url.host}{request.url.path}"] += 1
        return await self.apps[request.url.host].handle_async_request(request)


async def test_a_decision_with_100_held_symbols_makes_three_upstream_calls() -> None:
    """Prices in one batch, held volatilities in one batch, one regime: 3 calls, not 201."""
    held = {f"C{i:03d}-USD": 0.001 for i in range(99)} | {"BTC-USD": 0.001}
    market_app, regime_app = gateway(), RegimeStub("TRENDING", 0.001).app()
    settings = Settings(
        market_data_url="http://gateway", regime_url="http://regime", log_level="WARNING"
    )
    async with lifespan_app(market_app) as served_market:
        transport = Counting({"gateway": served_market, "regime": regime_app})
        seam = HttpxTransport(transport)
        service = RiskService(
            settings,
            MarketDataClient(
                ServiceClient.from_settings("market_data", settings, transport=seam), simulator()
            ),
            ServiceClient.from_settings("regime_detection", settings, transport=seam),
        )
        request = ApproveTradeRequest.model_validate(
            {
                "symbol": "BTC-USD",
                "side": "buy",
                "amount": 100.0,
                "current_portfolio": {"cash": 100_000.0, "positions": held},
            }
        )
        answer = await service.approve(request)
    assert answer.price is not None
    assert answer.valuation is not None
    assert len(answer.valuation) == 100
    assert sum(transport.calls.values()) == 3, transport.calls
    assert transport.calls["gateway/api/v1/prices"] == 1
    assert transport.calls["gateway/api/v1/ohlcv"] == 1
    assert transport.calls["regime/api/v1/regime/BTC-USD"] == 1
