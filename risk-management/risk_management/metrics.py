"""Risk Management's own metric family, read from `RiskService`'s counts at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from risk_management.service import RiskService
from shared.metrics import counter_family


def risk_families(service: RiskService) -> Iterable[Metric]:
    """`risk_decisions_total{approved,binding_constraint}`."""
    yield counter_family(
        "risk_decisions",
        "Trade decisions, by approval and the constraint that bound the amount",
        ["approved", "binding_constraint"],
        service.decisions,
    )
