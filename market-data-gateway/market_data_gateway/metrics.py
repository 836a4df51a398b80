"""The gateway's own metric families, read from `GatewayService`'s counts at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from market_data_gateway.service import GatewayService
from shared.metrics import counter_family


def gateway_families(service: GatewayService) -> Iterable[Metric]:
    """`gateway_cache_requests_total{kind,result}`, `gateway_source_requests_total`."""
    yield counter_family(
        "gateway_cache_requests",
        "Price and OHLCV answers by cache result (hit, miss, error: Redis unusable)",
        ["kind", "result"],
        service.cache_requests,
    )
    yield counter_family(
        "gateway_source_requests",
        "Calls to the market source (coinbase, simulated) by status (ok, not_found, error)",
        ["source", "status"],
        service.source_requests,
    )
