"""One type per vocabulary: every service documents `regime` and `granularity` by the
shared `Regime` and `Granularity`, so the four OpenAPI documents cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.market.models import Granularity, Regime
from tests.support.contract import APPS, openapi

SHARED: dict[str, type[Regime] | type[Granularity]] = {"regime": Regime, "granularity": Granularity}


def _uses(node: Any, name: str) -> Iterator[dict[str, Any]]:
    """Every schema of a property or parameter called `name`, anywhere in the document."""
    if isinstance(node, list):
        for item in node:
            yield from _uses(item, name)
    elif isinstance(node, dict):
        if node.get("in") == "query" and node.get("name") == name:
            yield node["schema"]
        properties = node.get("properties")
        if isinstance(properties, dict) and name in properties:
            yield properties[name]
        for value in node.values():
            yield from _uses(value, name)


@pytest.mark.parametrize("service", sorted(APPS))
@pytest.mark.parametrize("name", sorted(SHARED))
def test_each_service_documents_the_shared_type(service: str, name: str) -> None:
    """Each `regime` or `granularity` a service documents is the shared component, whole."""
    doc = openapi(service)
    uses = list(_uses(doc["paths"], name)) + list(_uses(doc["components"], name))
    for schema in uses:
        assert schema["$ref"] == f"#/components/schemas/{SHARED[name].__name__}", schema
    if uses:
        component = doc["components"]["schemas"][SHARED[name].__name__]
        assert component == TypeAdapter(SHARED[name]).json_schema()


def test_the_services_agree_on_the_vocabularies() -> None:
    """Gateway, Regime and Risk list the same four regimes; gateway and Regime the same widths."""
    regimes = [openapi(s)["components"]["schemas"]["Regime"]["enum"] for s in sorted(APPS)]
    assert regimes == [["TRENDING", "CHOPPY", "VOLATILE", "UNKNOWN"]] * 3
    widths = [
        openapi(s)["components"]["schemas"]["Granularity"]["enum"]
        for s in ("market_data", "regime_detection")
    ]
    assert widths == [[60, 300, 900, 3600, 21600, 86400]] * 2
