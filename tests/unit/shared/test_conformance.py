"""Every answer of the four services conforms to its OpenAPI document (schemathesis).

The four real apps run wired together (simulated market, a fresh SQLite ledger) in
uvicorn threads; schemathesis generates requests from each service's served document and
checks every response, errors included, against the documented schema (`Problem` for
every 4xx/5xx), and that none is a 5xx. A few examples per operation keep it quick.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from execution.app import create_app as create_execution
from execution.config import Settings as ExecutionSettings
from hypothesis import HealthCheck, given, settings
from market_data_gateway.app import create_app as create_gateway
from market_data_gateway.config import Settings as GatewaySettings
from regime_detection.app import create_app as create_regime
from regime_detection.config import Settings as RegimeSettings
from risk_management.app import create_app as create_risk
from risk_management.config import Settings as RiskSettings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.servers import ThreadServer, serve_in_thread

SERVICES = ["market-data-gateway", "regime-detection", "risk-management", "execution"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ThreadServer]]:
    """The four services, each calling the real next one."""
    ledger: Path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    simulated, quiet = "simulated", "WARNING"
    gateway_settings = GatewaySettings(
        market_data_source=simulated, log_level=quiet, redis_url=None
    )
    with serve_in_thread(create_gateway(gateway_settings)) as gateway:
        regime_settings = RegimeSettings(
            market_data_source=simulated, log_level=quiet, market_data_url=gateway.url
        )
        with serve_in_thread(create_regime(regime_settings)) as regime:
            risk_settings = RiskSettings(
                market_data_source=simulated,
                log_level=quiet,
                market_data_url=gateway.url,
                regime_url=regime.url,
            )
            with serve_in_thread(create_risk(risk_settings)) as risk:
                execution_settings = ExecutionSettings(
                    market_data_source=simulated,
                    log_level=quiet,
                    market_data_url=gateway.url,
                    risk_url=risk.url,
                    database_url=f"sqlite:///{ledger}",
                )
                with serve_in_thread(create_execution(execution_settings)) as execution:
                    yield dict(zip(SERVICES, [gateway, regime, risk, execution], strict=True))


@pytest.mark.parametrize("service", SERVICES)
def test_every_answer_conforms_to_the_served_document(
    stack: dict[str, ThreadServer], service: str
) -> None:
    """Each response matches its documented schema (errors are `Problem`s) and none is a 5xx."""
    # Loaded from the running service, as a client would (schemathesis's pytest plugin
    # is not used: its fixture loader does not run on this pytest).
    api = schemathesis.openapi.from_url(f"{stack[service].url}/openapi.json")
    operations = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert operations
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=5,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=[response_schema_conformance, not_a_server_error])

        conforms()
