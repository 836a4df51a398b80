"""Regime Detection's own metric family, read from `RegimeService`'s counts at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from regime_detection.service import RegimeService
from shared.metrics import counter_family


def regime_families(service: RegimeService) -> Iterable[Metric]:
    """`regime_classifications_total{regime}`."""
    yield counter_family(
        "regime_classifications",
        "Regime classifications computed, by regime (a cached answer is not counted again)",
        ["regime"],
        {(regime,): n for regime, n in service.classifications.items()},
    )
