"""Reading a /metrics page back: each family's type, and every sample by name and labels."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


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
