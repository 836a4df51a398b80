"""Container tests need a Docker engine with compose v2; without one they skip, saying so.

`.ci/run` starts one (`../shared/docker/engine.sh up`). Under CI=true a missing engine is a
failure, not a skip: CI must never pass without having run them.
"""

from __future__ import annotations

import os

import pytest

from tests.containers.compose import engine_answers

NO_ENGINE = (
    "no Docker engine with compose v2 answers: start one with `../shared/docker/engine.sh up` "
    'and `eval "$(../shared/docker/engine.sh env)"`, as .ci/run does'
)


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    """Skip (fail under CI=true) the container tests when no engine answers."""
    if engine_answers():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(NO_ENGINE)
    pytest.skip(NO_ENGINE)
