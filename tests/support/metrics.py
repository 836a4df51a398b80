"""Reading a /metrics page back: each family's type, and every sample by name and labels."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# The families each service exports (by compose name) and their types: the list.
# The live-stack test checks the services export them; the dashboard test that every
# panel's query names one of them.
COMMON_FAMILIES = {
    "http_requests": "counter",
    "http_request_duration_seconds": "histogram",
    "circuit_breaker_state": "gauge",
    "upstream_requests": "counter",
}
OWN_FAMILIES = {
    "market-data": {"gateway_cache_requests": "counter", "gateway_source_requests": "counter"},
    "regime-detection": {"regime_classifications": "counter"},
    "risk-management": {"risk_decisions": "counter"},
    "execution": {
        "execution_orders": "counter",
        "execution_fill_notional_usd": "counter",
        "execution_equity_usd": "gauge",
        "execution_trading_state": "gauge",
        "execution_ledger_write_seconds": "histogram",
    },
}
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def exported_names() -> set[str]:
    """Every sample name the services export (a counter `x` is sampled as `x_total`)."""
    families = dict(COMMON_FAMILIES)
    for own in OWN_FAMILIES.values():
        families.update(own)
    return {name + suffix for name, kind in families.items() for suffix in _SUFFIXES[kind]}


@dataclass(frozen=True)
class Scraped:
    types: dict[str, str]
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, got), v in self.samples.items() if n == name and wanted <= got)

    def label_values(self, name: str, label: str) -> set[str]:
        """Every value `label` takes in `name`'s samples."""
        return {dict(got)[label] for (n, got) in self.samples if n == name and label in dict(got)}


def parse_metrics(text: str) -> Scraped:
    """Parse the Prometheus text format with prometheus-client's own parser."""
    types: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return Scraped(types, samples)
