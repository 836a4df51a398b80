"""Discovery: the seed's map, environment overrides through the settings, unknown names."""

from __future__ import annotations

import httpx
import pytest

from shared.breaker import CircuitBreaker
from shared.client import ServiceClient
from shared.discovery import SERVICES, UnknownServiceError
from shared.retry import RetryPolicy
from shared.settings import CommonSettings
from shared.transport import HttpxTransport

VARIABLES = {
    "market_data": "MARKET_DATA_URL",
    "regime_detection": "REGIME_URL",
    "risk_management": "RISK_URL",
    "execution": "EXECUTION_URL",
}


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in VARIABLES.values():
        monkeypatch.delenv(var, raising=False)


async def test_defaults_are_the_seed_map() -> None:
    """With no overrides each service is on localhost:8001..8004."""
    urls = {name: CommonSettings().url_of(name) for name in SERVICES}
    assert urls == {
        "market_data": "http://localhost:8001",
        "regime_detection": "http://localhost:8002",
        "risk_management": "http://localhost:8003",
        "execution": "http://localhost:8004",
    }


@pytest.mark.parametrize(("name", "var"), VARIABLES.items())
async def test_env_overrides_each_service(
    name: str, var: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's docker-compose variable overrides its URL (trailing slash dropped)."""
    monkeypatch.setenv(var, "http://elsewhere:9999/")
    settings = CommonSettings()
    assert settings.url_of(name) == "http://elsewhere:9999"
    others = [other for other in SERVICES if other != name]
    assert all(settings.url_of(other) == SERVICES[other] for other in others)


async def test_empty_override_falls_back_to_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty variable counts as unset (compose's `${EXECUTION_URL:-}`)."""
    monkeypatch.setenv("EXECUTION_URL", "")
    assert CommonSettings().url_of("execution") == "http://localhost:8004"
    assert CommonSettings(risk_url="").url_of("risk_management") == "http://localhost:8003"


async def test_a_client_without_a_url_asks_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ServiceClient given no base_url takes the one discovery path, the environment's URL."""
    monkeypatch.setenv("RISK_URL", "http://risk:8003/")
    client = ServiceClient(
        "risk_management",
        transport=HttpxTransport(httpx.MockTransport(lambda request: httpx.Response(200))),
        timeout=1.0,
        retry=RetryPolicy(attempts=1, initial_backoff=0.1, max_backoff=0.1),
        breaker=CircuitBreaker("risk_management", failure_threshold=1, recovery_timeout=1.0),
    )
    assert client.base_url == "http://risk:8003"


async def test_unknown_service_is_an_error() -> None:
    """An unknown name raises UnknownServiceError naming the known services."""
    with pytest.raises(UnknownServiceError, match="market_data"):
        CommonSettings().url_of("marketdata")


async def test_settings_read_the_resilience_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """CommonSettings reads the resilience and logging knobs from the environment."""
    assert CommonSettings().log_level == "INFO"
    monkeypatch.setenv("SERVICE_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("RETRY_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("BREAKER_FAILURE_THRESHOLD", "2")
    monkeypatch.setenv("BREAKER_RECOVERY_SECONDS", "0.25")
    monkeypatch.setenv("LOG_FORMAT", "json")
    settings = CommonSettings()
    assert settings.service_timeout_seconds == 1.5
    assert settings.retry_max_attempts == 4
    assert settings.breaker_failure_threshold == 2
    assert settings.breaker_recovery_seconds == 0.25
    assert settings.log_format == "json"
