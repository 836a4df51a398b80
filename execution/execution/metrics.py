"""Execution's own metric families, read from the trade service and the history at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from execution.history import History
from execution.service import TradeService
from execution.trading_state import TradingStateStore
from shared.metrics import Timings, counter_family, gauge_family, histogram_family
from shared.trading import TradingState

LEDGER_WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class ExecutionFamilies:
    """Orders, the filled notional, the equity, the trading state, the ledger's writes.

    The trading state lives in the ledger (another replica, or a protection inside a
    fill, may change it): `refresh` reads it before each scrape.
    """

    def __init__(
        self, trades: TradeService, history: History, trading: TradingStateStore, writes: Timings
    ) -> None:
        self.trades = trades
        self.history = history
        self.trading = trading
        self.writes = writes
        self.state = TradingState.ACTIVE

    async def refresh(self) -> None:
        self.state = (await self.trading.current()).state

    def __call__(self) -> Iterable[Metric]:
        yield counter_family(
            "execution_orders",
            "Orders written to the ledger, by side and status (FILLED, REJECTED)",
            ["side", "status"],
            self.trades.orders,
        )
        notional = CounterMetricFamily(
            "execution_fill_notional_usd", "USD notional filled (fees excluded)"
        )
        notional.add_metric([], float(self.trades.filled_notional))
        yield notional
        equity = GaugeMetricFamily(
            "execution_equity_usd",
            "Account equity (cash + positions) at the latest portfolio-history point",
        )
        if self.history.equity is not None:
            equity.add_metric([], self.history.equity)
        yield equity
        yield gauge_family(
            "execution_trading_state",
            "The trading state: 1 for the current one, 0 for the others",
            ["state"],
            {(state.value,): 1.0 if state is self.state else 0.0 for state in TradingState},
        )
        yield histogram_family(
            "execution_ledger_write_seconds",
            "Ledger write transactions in seconds, waiting for the writer included",
            [],
            {(): self.writes},
        )
