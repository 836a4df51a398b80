"""Execution's own metric families, read from the trade service and the valuer at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from execution.portfolio import PortfolioValuer
from execution.service import TradeService
from shared.metrics import counter_family, gauge_family

TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
LEDGER_WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def execution_families(
    trades: TradeService, valuer: PortfolioValuer, trading_state: Callable[[], str]
) -> Iterable[Metric]:
    """Orders, the filled notional, the equity at the latest valuation, the trading state."""
    yield counter_family(
        "execution_orders",
        "Orders written to the ledger, by side and status (FILLED, REJECTED)",
        ["side", "status"],
        trades.orders,
    )
    notional = CounterMetricFamily(
        "execution_fill_notional_usd", "USD notional filled (fees excluded)"
    )
    notional.add_metric([], float(trades.filled_notional))
    yield notional
    equity = GaugeMetricFamily(
        "execution_equity_usd",
        "Account equity (cash + positions at market) at the latest valuation",
    )
    if valuer.equity is not None:
        equity.add_metric([], valuer.equity)
    yield equity
    current = trading_state()
    yield gauge_family(
        "execution_trading_state",
        "The trading state: 1 for the current one, 0 for the others",
        ["state"],
        {(state,): 1.0 if state == current else 0.0 for state in TRADING_STATES},
    )
