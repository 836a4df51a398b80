"""`SimulatedMarket`: a deterministic synthetic market with known regimes.

Every candle is a pure function of (seed, symbol, granularity, candle open time)
(see `simulation_paths`), so replicas, restarts and the direct fallback agree, and
`regime_at` can tell a test the true regime of any candle. Prices are realistic per
symbol: a table for well-known assets, a hashed level for any other; a pair quoted in
something other than a dollar is the ratio of the two dollar prices.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from shared.market import simulation_paths as paths
from shared.market.models import SYMBOL_PATTERN, Candle, CandleSeries, Product, Quote, Regime
from shared.market.source import UnknownSymbolError

# Rough dollar prices and annual volatilities of well-known assets.
_USD_PRICES = {
    "BTC": 78_000.0, "ETH": 3_500.0, "SOL": 170.0, "BNB": 600.0, "XRP": 0.6, "ADA": 0.5,
    "DOGE": 0.15, "LTC": 80.0, "LINK": 15.0, "AVAX": 35.0, "DOT": 7.0, "MATIC": 0.7,
    "USD": 1.0, "USDT": 1.0, "USDC": 1.0, "DAI": 1.0, "EUR": 1.08, "GBP": 1.27,
}  # fmt: skip
# Dollar stablecoins hold their peg: a hundredth of a cent or so from par a minute.
_ANNUAL_VOLS = {"BTC": 0.5, "ETH": 0.6, "SOL": 0.7, "USDT": 0.0005, "DAI": 0.0005}
# What the simulator lists (`GET /api/v1/symbols`): well-known dollar pairs as Coinbase
# lists them, USDT-USD and DAI-USD among them (near par); not USDC-USD, which Coinbase
# converts 1:1 rather than trading. It still prices any BASE-QUOTE for tests and tools.
SIMULATED_PRODUCTS: tuple[str, ...] = (
    "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "LTC-USD",
    "LINK-USD", "AVAX-USD", "DOT-USD", "USDT-USD", "DAI-USD", "ETH-BTC",
)  # fmt: skip
_PATTERN = re.compile(SYMBOL_PATTERN)


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _usd_price(asset: str) -> float:
    known = _USD_PRICES.get(asset)
    if known is not None:
        return known
    # Unknown assets: somewhere between a cent and a few thousand dollars.
    return float(10 ** (-2 + 5.5 * (_hash("price:" + asset) % 10_000) / 10_000))


class SimulatedMarket:
    """A `MarketSource` whose candles and ground-truth regimes are computed, not fetched."""

    name: Literal["simulated"] = "simulated"

    def __init__(self, seed: int, *, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed & 0xFFFFFFFFFFFFFFFF
        self._clock = clock

    async def price(self, symbol: str) -> Quote:
        """The live price: the forming candle's path from its open towards its close."""
        now = self._clock()
        granularity = 60
        index = math.floor(now / granularity)
        row = self._rows(symbol, granularity, index, index + 1)
        fraction = now / granularity - index
        price = float(row.open[0] + (row.close[0] - row.open[0]) * fraction)
        return Quote(symbol, price, datetime.fromtimestamp(now, UTC), "simulated")

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        """The last `periods` closed candles (open time + granularity <= now), oldest first."""
        last = math.floor(self._clock() / granularity) - 1
        first = last - max(periods, 0) + 1
        rows = self._rows(symbol, granularity, first, last + 1)
        times = np.arange(first, last + 1) * granularity
        columns = (rows.open, rows.high, rows.low, rows.close, rows.volume)
        candles = list(map(Candle, times.tolist(), *(c.tolist() for c in columns)))
        return CandleSeries(symbol, granularity, "simulated", candles)

    def regime_at(self, symbol: str, granularity: int, t: float) -> Regime:
        """The true regime of the candle of `symbol` containing epoch second `t`."""
        index = math.floor(t / granularity)
        regime = self._rows(symbol, granularity, index, index + 1).regime
        return paths.REGIMES[int(regime[0])]

    def regimes(self, symbol: str, granularity: int, first: int, stop: int) -> list[Regime]:
        """The true regimes of candle indexes `first` to `stop` (exclusive), for scoring."""
        codes = self._rows(symbol, granularity, first, stop).regime
        return [paths.REGIMES[int(code)] for code in codes]

    async def products(self) -> list[Product]:
        """The fixed list `SIMULATED_PRODUCTS`, all listed."""
        pairs = (s.split("-") for s in SIMULATED_PRODUCTS)
        return [Product(f"{b}-{q}", b, q, listed=True) for b, q in pairs]

    async def aclose(self) -> None:
        """Nothing to release."""

    def _rows(self, symbol: str, granularity: int, first: int, stop: int) -> paths.Block:
        """OHLCV and regime arrays of candle indexes `first` to `stop` (exclusive)."""
        if not _PATTERN.match(symbol):
            raise UnknownSymbolError(f"{symbol!r} is not a BASE-QUOTE product id")
        if granularity <= 0:
            raise ValueError(f"granularity must be positive, got {granularity}")
        base, quote = symbol.split("-")
        annual = _ANNUAL_VOLS.get(base, 0.45 + 0.25 * (_hash("vol:" + base) % 1000) / 1000)
        sigmas = paths.step_sigmas(annual, granularity)
        log_base = math.log(_usd_price(base) / _usd_price(quote))
        key = (self.seed, _hash(symbol), granularity)
        volume_scale = 1e6 / _usd_price(base) * granularity / 60
        blocks = [
            paths.block(key, sigmas, log_base, index)
            for index in range(first // paths.BLOCK, (stop - 1) // paths.BLOCK + 1)
        ]
        offset = first // paths.BLOCK * paths.BLOCK
        rows = slice(first - offset, max(stop, first) - offset)

        def column(name: str) -> Any:
            if not blocks:
                return np.empty(0)
            return np.concatenate([getattr(b, name) for b in blocks])[rows]

        volume = column("volume") * volume_scale
        return paths.Block(
            column("open"), column("high"), column("low"), column("close"), volume, column("regime")
        )
