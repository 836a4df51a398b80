"""Settings every service shares, read from the environment (names are the upper-cased fields)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.discovery import SERVICES, known_service
from shared.retry import RetryPolicy

# Each service's URL field (its environment variable, upper-cased).
_URL_FIELDS = {
    "market_data": "market_data_url",
    "regime_detection": "regime_url",
    "risk_management": "risk_url",
    "execution": "execution_url",
}


class CommonSettings(BaseSettings):
    """Logging, discovery and resilience knobs; each service's Settings extends this."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # Access control (see `shared.auth`): the keys this service accepts, as
    # `role:key` or `role:sha256:<hex>` entries, and the key it sends to the others.
    # Unset API_KEYS: the service refuses to start (fail closed).
    api_keys: SecretStr = SecretStr("")
    service_key: SecretStr | None = None
    # A file of API_KEYS=/SERVICE_KEY= lines (`make run`'s .run/keys.env, compose's
    # keys volume), read for whichever of the two the environment does not set.
    keys_file: Path | None = None

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "text"

    # Metrics and traces. Spans go over OTLP/HTTP to this base URL (its /v1/traces) when
    # set; without it they are not recorded at all. `OBSERVABILITY=false` stops counting
    # and spanning requests (trace IDs still flow): the bench measures the difference.
    otel_exporter_otlp_endpoint: str | None = None
    observability: bool = True

    # Discovery: the seed's map, overridable by the names docker-compose sets (an empty
    # variable counts as unset). `url_of` is the one reader.
    market_data_url: str = SERVICES["market_data"]
    regime_url: str = SERVICES["regime_detection"]
    risk_url: str = SERVICES["risk_management"]
    execution_url: str = SERVICES["execution"]

    # Resilience of every inter-service call.
    service_timeout_seconds: float = Field(default=5.0, gt=0)
    retry_max_attempts: int = Field(default=3, ge=1, le=10)
    # Exponential backoff between attempts (with jitter; a longer Retry-After wins).
    retry_initial_backoff_seconds: float = Field(default=0.1, ge=0)
    retry_max_backoff_seconds: float = Field(default=1.0, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_recovery_seconds: float = Field(default=30.0, gt=0)

    @field_validator(*_URL_FIELDS.values(), mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        if value == "":
            return cls.model_fields[str(info.field_name)].default
        return value

    @model_validator(mode="before")
    @classmethod
    def _keys_from_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("keys_file"):
            return data
        if data.get("api_keys") and data.get("service_key"):
            return data  # the environment wins; the file need not even exist
        # Imported here: `python -m shared.keygen` must not find itself already imported.
        from shared import keygen

        path = Path(data["keys_file"])
        try:
            found = keygen.read(path)
        except OSError as exc:
            raise ValueError(f"KEYS_FILE {path} cannot be read: {exc.strerror}") from None
        names = {"api_keys": "API_KEYS", "service_key": "SERVICE_KEY"}
        return data | {
            field: found[name]
            for field, name in names.items()
            if not data.get(field) and found.get(name)
        }

    def retry_policy(self) -> RetryPolicy:
        """The retry knobs of every inter-service call, as `shared.retry` takes them."""
        return RetryPolicy(
            attempts=self.retry_max_attempts,
            initial_backoff=self.retry_initial_backoff_seconds,
            max_backoff=self.retry_max_backoff_seconds,
        )

    def url_of(self, service_name: str) -> str:
        """The configured base URL of a service in the discovery map."""
        url: str = getattr(self, _URL_FIELDS[known_service(service_name)])
        return url.rstrip("/")


class MarketSettings(CommonSettings):
    """Where market data comes from; every service that reads the market has these."""

    # auto: probe Coinbase at start-up, use the simulator for the process's life if it
    # cannot be reached. Never mixed within one process.
    market_data_source: Literal["auto", "coinbase", "simulated"] = "auto"
    coinbase_api_url: str = "https://api.exchange.coinbase.com"
    coinbase_probe_timeout_seconds: float = Field(default=2.0, gt=0)
    # Coinbase politeness: the public limit is 10 requests/s per IP.
    coinbase_rate_limit_per_second: float = Field(default=8.0, gt=0, le=10)
    coinbase_burst: int = Field(default=8, ge=1, le=15)
    # Attempts per logical request (first try included) on 429, 5xx and network errors.
    coinbase_max_attempts: int = Field(default=4, ge=1, le=10)
    coinbase_timeout_seconds: float = Field(default=3.0, gt=0)
    # Everything one request may take (throttle, retries, Retry-After waits included),
    # below the callers' SERVICE_TIMEOUT_SECONDS, so the gateway answers before they give up.
    coinbase_total_timeout_seconds: float = Field(default=4.5, gt=0)
    coinbase_initial_backoff_seconds: float = Field(default=0.25, gt=0)
    coinbase_max_backoff_seconds: float = Field(default=4.0, gt=0)
    # The simulator's candles are a pure function of (symbol, seed, candle time).
    simulation_seed: int = 7
