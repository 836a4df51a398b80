"""RiskService fallbacks with the gateway and regime service down and a failing exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from risk_management.config import Settings
from risk_management.inputs import read_prices, read_volatilities
from risk_management.schemas import ApproveTradeRequest
from risk_management.service import RiskService

from shared.client import ServiceClient
from shared.market.client import MarketDataClient
from shared.market.models import MAX_BATCH_SYMBOLS, CandleSeries, Product, Quote, SourceName
from shared.market.source import MarketUnavailableError
from shared.transport import opened
from tests.support.servers import free_port, serve_in_thread
from tests.unit.risk_management.upstreams import gateway, simulator


class FlakyExchange:
    """The simulator as an exchange that fails (or hangs) for chosen symbols; with
    `malformed_candles`, its candle answers cannot be read at all."""

    name: SourceName = "simulated"

    def __init__(
        self,
        *,
        no_price: frozenset[str] = frozenset(),
        no_candles: frozenset[str] = frozenset(),
        malformed_candles: bool = False,
    ) -> None:
        self.market = simulator()
        self.no_price, self.no_candles = no_price, no_candles
        self.malformed_candles = malformed_candles
        self.hang = asyncio.Event()  # set by no one: a price for "HANG-USD" never comes

    async def price(self, symbol: str) -> Quote:
        if symbol == "HANG-USD":
            await self.hang.wait()
        if symbol in self.no_price:
            raise MarketUnavailableError("simulated", f"no ticker for {symbol}")
        return await self.market.price(symbol)

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        if symbol in self.no_candles:
            raise MarketUnavailableError("simulated", f"no candles for {symbol}")
        if self.malformed_candles:
            raise KeyError("close")  # what parsing an answer without the field raises
        return await self.market.candles(symbol, granularity, periods)

    async def products(self) -> list[Product]:
        return await self.market.products()

    async def aclose(self) -> None:
        """Nothing to release."""


Build = Callable[..., RiskService]


@pytest.fixture
async def build() -> AsyncIterator[Build]:
    """RiskService with the gateway and the regime service at closed ports."""
    closed = f"http://127.0.0.1:{free_port()}"
    async with opened(None) as pool:

        def make(exchange: FlakyExchange, **overrides: Any) -> RiskService:
            settings = Settings(market_data_url=closed, regime_url=closed, **overrides)
            gateway = ServiceClient.from_settings("market_data", settings, transport=pool)
            regime = ServiceClient.from_settings("regime_detection", settings, transport=pool)
            return RiskService(settings, MarketDataClient(gateway, exchange), regime)

        yield make


def request(symbol: str = "BTC-USD", **positions: float) -> ApproveTradeRequest:
    held = {k.replace("_", "-"): v for k, v in positions.items()}
    return ApproveTradeRequest.model_validate(
        {
            "symbol": symbol,
            "side": "buy",
            "amount": 1_000,
            "current_portfolio": {"cash": 100_000, "positions": held},
        }
    )


async def test_no_volatility_anywhere_takes_the_default(build: Build) -> None:
    """Regime down and no candles: the conservative default volatility, said in the reason."""
    service = build(FlakyExchange(no_candles=frozenset({"BTC-USD"})))
    answer = await service.approve(request())
    assert answer.approved is True
    assert answer.risk_metrics is not None
    assert answer.risk_metrics.volatility_source == "default"
    assert answer.risk_metrics.volatility_daily == 0.10
    assert "no volatility for BTC-USD: assumed 10.0% daily" in answer.reason
    assert "regime service unavailable" in answer.reason


async def test_an_unpriced_holding_refuses_the_trade(build: Build) -> None:
    """Without a price for a held symbol equity is unknown, so nothing is sized."""
    service = build(FlakyExchange(no_price=frozenset({"ETH-USD"})))
    answer = await service.approve(request(ETH_USD=2.0))
    assert (answer.approved, answer.max_amount) == (False, 0)
    assert answer.binding_constraint == "unpriced_holding"
    assert answer.reason.startswith("No price for held ETH-USD")


async def test_held_symbols_without_candles_get_the_default(build: Build) -> None:
    """A held symbol with no candles is risked at the default volatility, noted."""
    service = build(FlakyExchange(no_candles=frozenset({"ETH-USD"})))
    answer = await service.approve(request(ETH_USD=2.0))
    assert answer.approved is True
    assert "no volatility for ETH-USD" in answer.reason
    assert answer.risk_metrics is not None
    assert answer.risk_metrics.volatility_source == "candles"


async def test_a_symbol_without_candles_leaves_the_next_ones_measured(build: Build) -> None:
    """ETH-USD has no candles, SOL-USD has: only ETH-USD takes the default volatility."""
    service = build(FlakyExchange(no_candles=frozenset({"ETH-USD"})))
    answer = await service.approve(request(ETH_USD=2.0, SOL_USD=10.0))
    assert answer.approved is True
    assert "no volatility for ETH-USD" in answer.reason
    assert "no volatility for SOL-USD" not in answer.reason


async def test_unreadable_candles_take_the_default_volatility(build: Build) -> None:
    """Candles that cannot be read at all are no volatility: the default, not a failure."""
    service = build(FlakyExchange(malformed_candles=True))
    answer = await service.approve(request())
    assert answer.approved is True
    assert answer.risk_metrics is not None
    assert answer.risk_metrics.volatility_source == "default"
    assert "no volatility for BTC-USD: assumed 10.0% daily" in answer.reason


async def test_more_symbols_than_a_batch_takes_are_read_in_batches() -> None:
    """A portfolio of more symbols than the gateway takes per request (it answers 422
    above MAX_BATCH_SYMBOLS) is read in batches: every symbol gets its own answer, no
    refusal of the whole list."""
    symbols = [f"C{i}-USD" for i in range(2 * MAX_BATCH_SYMBOLS + 1)]  # three batches
    with serve_in_thread(gateway()) as server:
        settings = Settings(market_data_url=server.url, retry_max_attempts=1)
        async with opened(None) as pool:
            client = ServiceClient.from_settings("market_data", settings, transport=pool)
            # A direct source that fails every read: every answer came through the gateway.
            direct = FlakyExchange(no_price=frozenset(symbols), no_candles=frozenset(symbols))
            market = MarketDataClient(client, direct)
            prices = await read_prices(market, symbols)
            sigmas = await read_volatilities(market, symbols, 60, 100)
    assert {s for s, reading in prices.items() if reading.quote is not None} == set(symbols)
    assert {reading.quote.via for reading in prices.values() if reading.quote} == {"gateway"}
    assert {s for s, sigma in sigmas.items() if sigma is not None} == set(symbols)


async def test_a_price_that_never_comes_is_refused_at_the_deadline(build: Build) -> None:
    """A hung price read ends at the decision deadline with a refusal, not a hang."""
    service = build(FlakyExchange(), decision_timeout_seconds=0.2)
    answer = await asyncio.wait_for(service.approve(request("HANG-USD")), timeout=10)
    assert (answer.approved, answer.binding_constraint) == (False, "no_price")
    assert "timed out" in answer.reason


async def test_a_cancelled_decision_stops_its_readings(build: Build) -> None:
    """Cancelling a decision (its caller went away) cancels the reads it started."""
    service = build(FlakyExchange(), decision_timeout_seconds=30)
    before = asyncio.all_tasks()
    decision = asyncio.ensure_future(service.approve(request("HANG-USD")))
    for _ in range(100):  # loop turns until the decision has started its readers
        if len(asyncio.all_tasks() - before) > 1:
            break
        await asyncio.sleep(0)
    readers = asyncio.all_tasks() - before - {decision}
    assert readers
    decision.cancel()
    await asyncio.gather(decision, *readers, return_exceptions=True)
    assert all(task.cancelled() for task in readers)


async def test_the_volatility_floor_applies(build: Build) -> None:
    """No asset is risked as calmer than the configured floor."""
    service = build(FlakyExchange(), min_daily_volatility=0.5)
    answer = await service.approve(request())
    assert answer.risk_metrics is not None
    assert answer.risk_metrics.volatility_daily == 0.5
