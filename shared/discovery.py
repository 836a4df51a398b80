"""Where each service lives: the seed's config map.

The environment overrides it through `CommonSettings` (`MARKET_DATA_URL`, `REGIME_URL`,
`RISK_URL`, `EXECUTION_URL`, the names docker-compose sets): `settings.url_of(name)` is
the one way to a service's URL.
"""

from __future__ import annotations

from collections.abc import Mapping

SERVICES: Mapping[str, str] = {
    "market_data": "http://localhost:8001",
    "regime_detection": "http://localhost:8002",
    "risk_management": "http://localhost:8003",
    "execution": "http://localhost:8004",
}


class UnknownServiceError(KeyError):
    """A service name that is not in the map: a bug to catch at construction."""


def known_service(name: str) -> str:
    """`name` itself if the map has it; otherwise UnknownServiceError naming the known ones."""
    if name not in SERVICES:
        known = ", ".join(sorted(SERVICES))
        raise UnknownServiceError(f"unknown service {name!r}; known services: {known}")
    return name
