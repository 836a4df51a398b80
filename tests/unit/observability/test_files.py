"""The observability profile's files: Prometheus config, Grafana dashboard, compose wiring."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.support.metrics import exported_names
from tests.support.servers import REPO

OBSERVABILITY = REPO / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "tradestack.json"
# What is not a metric name in these queries: label matchers, grouping lists, ranges,
# strings, numbers, functions (a name before "("), and PromQL's own words.
_NOT_NAMES = re.compile(r"\{[^}]*\}|\b(?:by|without|on|ignoring)\s*\([^)]*\)|\[[^\]]*\]|\"[^\"]*\"")
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    return set(_NAME.findall(_NOT_NAMES.sub(" ", expr))) - _KEYWORDS


def panel_queries() -> list[tuple[str, str]]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def test_metric_names_are_read_from_promql() -> None:
    """The name reader finds metrics and skips functions, labels, ranges and groupings."""
    expr = 'histogram_quantile(0.5, sum by (le, route) (rate(a_bucket{x="y"}[5m]))) / b_total'
    assert metric_names(expr) == {"a_bucket", "b_total"}


def test_every_panel_query_names_an_exported_metric() -> None:
    """The dashboard is JSON, covers what the issue asks, and reads only exported metrics."""
    queries = panel_queries()
    titles = {title.lower() for title, _ in queries}
    for wanted in ("trades", "status", "constraint", "p50", "breaker", "cache", "equity", "state"):
        assert any(wanted in title for title in titles), wanted
    exported = exported_names()
    for title, expr in queries:
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= exported, (title, names - exported)


def test_promtool_accepts_the_prometheus_config() -> None:
    """`promtool check config` passes on the repository's Prometheus config."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is missing: `apt-get install prometheus` (.ci/run installs it)")
    result = subprocess.run(
        [promtool, "check", "config", str(OBSERVABILITY / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_profile_runs_the_three_from_repository_files() -> None:
    """Prometheus, Grafana and Jaeger are in the `observability` profile only, their
    mounted files exist, and Prometheus scrapes each of the four services."""
    compose: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana", "jaeger"):
        assert services[name]["profiles"] == ["observability"], name
        for volume in services[name].get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)
    for name in ("market-data", "regime-detection", "risk-management", "execution"):
        assert "profiles" not in services[name]
        assert (
            "OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
            in (services[name]["environment"])
        )
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for s in job["static_configs"]
        for target in s["targets"]
    }
    assert targets == {
        "market-data:8001",
        "regime-detection:8002",
        "risk-management:8003",
        "execution:8004",
    }
