"""`GET /api/v1/symbols`: Coinbase's product list when live, the fixed list on the simulator."""

from __future__ import annotations

import httpx
from market_data_gateway.app import create_app
from market_data_gateway.schemas import SymbolsOut

from shared.market.simulated import SIMULATED_PRODUCTS, SimulatedMarket
from tests.support.fake_coinbase import FakeCoinbase
from tests.unit.market_data_gateway.conftest import running, settings_for


async def test_coinbase_products_with_listed_flag(
    gateway: httpx.AsyncClient, fake: FakeCoinbase
) -> None:
    """The products come from Coinbase's /products; a delisted one is known, not listed."""
    answer = await gateway.get("/api/v1/symbols")
    assert answer.status_code == 200
    body = SymbolsOut.model_validate(answer.json())
    assert body.source == "coinbase"
    by_symbol = {p.symbol: p for p in body.symbols}
    assert {s for s, p in by_symbol.items() if p.listed} == set(fake.products)
    assert (by_symbol["ETH-BTC"].base, by_symbol["ETH-BTC"].quote) == ("ETH", "BTC")
    assert by_symbol["OLD-USD"].listed is False
    assert "ZZZZ-USD" not in by_symbol


async def test_coinbase_products_are_cached(gateway: httpx.AsyncClient, fake: FakeCoinbase) -> None:
    """A second list is served from the cache: Coinbase is asked once."""
    first = await gateway.get("/api/v1/symbols")
    second = await gateway.get("/api/v1/symbols")
    assert first.content == second.content
    assert fake.requests["/products"] == 1


async def test_simulator_lists_its_fixed_products() -> None:
    """On the simulator the list is SIMULATED_PRODUCTS, all listed; USDC-USD is not in it."""
    app = create_app(settings_for("http://127.0.0.1:9", market_data_source="simulated"))
    async with running(app) as client:
        body = (await client.get("/api/v1/symbols")).json()
    assert body["source"] == "simulated"
    assert [p["symbol"] for p in body["symbols"]] == list(SIMULATED_PRODUCTS)
    assert all(p["listed"] for p in body["symbols"])
    assert "USDC-USD" not in SIMULATED_PRODUCTS
    assert "ZZZZ-USD" not in SIMULATED_PRODUCTS


async def test_simulated_stablecoins_stay_near_par() -> None:
    """The simulator's listed dollar stablecoins trade within a hundredth of a cent of par,
    where an unpegged asset of the same level wanders (USDC-USD used to fill at 1.0075)."""
    market = SimulatedMarket(seed=7, clock=lambda: 1_764_000_000.0)
    for symbol in ("USDT-USD", "DAI-USD"):
        candles = (await market.candles(symbol, 60, 300)).candles
        assert all(abs(c.close - 1) < 1e-4 for c in candles), symbol
        assert abs((await market.price(symbol)).price - 1) < 1e-4
