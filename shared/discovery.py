"""Where each service lives: the seed's config map, overridden by environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

SERVICES: Mapping[str, str] = {
    "market_data": "http://localhost:8001",
    "regime_detection": "http://localhost:8002",
    "risk_management": "http://localhost:8003",
    "execution": "http://localhost:8004",
}

# The names docker-compose sets.
ENV_VARS: Mapping[str, str] = {
    "market_data": "MARKET_DATA_URL",
    "regime_detection": "REGIME_URL",
    "risk_management": "RISK_URL",
    "execution": "EXECUTION_URL",
}


class UnknownServiceError(KeyError):
    """A service name that is not in the map: a bug to catch at construction."""


def service_url(name: str, env: Mapping[str, str] | None = None) -> str:
    """Return the base URL of `name`, from its environment variable or the default map."""
    if name not in SERVICES:
        known = ", ".join(sorted(SERVICES))
        raise UnknownServiceError(f"unknown service {name!r}; known services: {known}")
    environ = os.environ if env is None else env
    return (environ.get(ENV_VARS[name]) or SERVICES[name]).rstrip("/")
