"""Discovery: the seed's map, environment overrides, unknown names."""

from __future__ import annotations

import pytest

from shared.discovery import SERVICES, UnknownServiceError, service_url
from shared.settings import CommonSettings


async def test_defaults_are_the_seed_map() -> None:
    """With no overrides each service is on localhost:8001..8004."""
    urls = {name: service_url(name, env={}) for name in SERVICES}
    assert urls == {
        "market_data": "http://localhost:8001",
        "regime_detection": "http://localhost:8002",
        "risk_management": "http://localhost:8003",
        "execution": "http://localhost:8004",
    }


@pytest.mark.parametrize(
    ("name", "var"),
    [
        ("market_data", "MARKET_DATA_URL"),
        ("regime_detection", "REGIME_URL"),
        ("risk_management", "RISK_URL"),
        ("execution", "EXECUTION_URL"),
    ],
)
async def test_env_overrides_each_service(name: str, var: str) -> None:
    """Each service's docker-compose variable overrides its URL (trailing slash dropped)."""
    env = {var: "http://elsewhere:9999/"}
    assert service_url(name, env=env) == "http://elsewhere:9999"
    others = [other for other in SERVICES if other != name]
    assert all(service_url(other, env=env) == SERVICES[other] for other in others)


async def test_empty_override_falls_back_to_default() -> None:
    """An empty variable counts as unset."""
    assert service_url("execution", env={"EXECUTION_URL": ""}) == "http://localhost:8004"


async def test_reads_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit env it reads os.environ."""
    monkeypatch.setenv("RISK_URL", "http://risk:8003")
    assert service_url("risk_management") == "http://risk:8003"


async def test_unknown_service_is_an_error() -> None:
    """An unknown name raises UnknownServiceError naming the known services."""
    with pytest.raises(UnknownServiceError, match="market_data"):
        service_url("marketdata", env={})


async def test_settings_defaults_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """CommonSettings reads the same variables and the resilience knobs from the environment."""
    for var in ("MARKET_DATA_URL", "REGIME_URL", "RISK_URL", "EXECUTION_URL"):
        monkeypatch.delenv(var, raising=False)
    defaults = CommonSettings()
    assert defaults.url_of("regime_detection") == "http://localhost:8002"
    assert defaults.log_level == "INFO"
    monkeypatch.setenv("REGIME_URL", "http://regime:8002/")
    monkeypatch.setenv("SERVICE_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("RETRY_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("BREAKER_FAILURE_THRESHOLD", "2")
    monkeypatch.setenv("BREAKER_RECOVERY_SECONDS", "0.25")
    monkeypatch.setenv("LOG_FORMAT", "json")
    settings = CommonSettings()
    assert settings.url_of("regime_detection") == "http://regime:8002"
    assert settings.url_of("market_data") == "http://localhost:8001"
    assert settings.service_timeout_seconds == 1.5
    assert settings.retry_max_attempts == 4
    assert settings.breaker_failure_threshold == 2
    assert settings.breaker_recovery_seconds == 0.25
    assert settings.log_format == "json"


async def test_settings_unknown_service_is_an_error() -> None:
    """CommonSettings.url_of raises the same UnknownServiceError for an unknown name."""
    with pytest.raises(UnknownServiceError):
        CommonSettings().url_of("nope")
