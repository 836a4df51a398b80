"""Settings every service shares, read from the environment (names are the upper-cased fields)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.discovery import SERVICES, UnknownServiceError


class CommonSettings(BaseSettings):
    """Logging, discovery and resilience knobs; each service's Settings extends this."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "text"

    # Metrics and traces. Spans go over OTLP/HTTP to this base URL (its /v1/traces) when
    # set; without it they are not recorded at all. `OBSERVABILITY=false` stops counting
    # and spanning requests (trace IDs still flow): the bench measures the difference.
    otel_exporter_otlp_endpoint: str | None = None
    observability: bool = True

    # Discovery: the seed's map, overridable by the names docker-compose sets.
    market_data_url: str = SERVICES["market_data"]
    regime_url: str = SERVICES["regime_detection"]
    risk_url: str = SERVICES["risk_management"]
    execution_url: str = SERVICES["execution"]

    # Resilience of every inter-service call.
    service_timeout_seconds: float = Field(default=5.0, gt=0)
    retry_max_attempts: int = Field(default=3, ge=1, le=10)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_recovery_seconds: float = Field(default=30.0, gt=0)

    def url_of(self, service_name: str) -> str:
        """The configured base URL of a service in the discovery map."""
        urls = {
            "market_data": self.market_data_url,
            "regime_detection": self.regime_url,
            "risk_management": self.risk_url,
            "execution": self.execution_url,
        }
        if service_name not in urls:
            known = ", ".join(sorted(urls))
            raise UnknownServiceError(f"unknown service {service_name!r}; known services: {known}")
        return urls[service_name].rstrip("/")


class MarketSettings(CommonSettings):
    """Where market data comes from; every service that reads the market has these."""

    # auto: probe Coinbase at start-up, use the simulator for the process's life if it
    # cannot be reached. Never mixed within one process.
    market_data_source: Literal["auto", "coinbase", "simulated"] = "auto"
    coinbase_api_url: str = "https://api.exchange.coinbase.com"
    coinbase_probe_timeout_seconds: float = Field(default=2.0, gt=0)
    # The simulator's candles are a pure function of (symbol, seed, candle time).
    simulation_seed: int = 7
