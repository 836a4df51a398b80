"""Container tests need a Docker engine with compose v2; without one they skip, saying so.

`.ci/run` starts one (`../shared/docker/engine.sh up`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.containers.compose import ComposeProject, NewProject, engine_answers

NO_ENGINE = (
    "no Docker engine with compose v2 answers: start one with `../shared/docker/engine.sh up` "
    'and `eval "$(../shared/docker/engine.sh env)"`, as .ci/run does'
)


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    """Skip the container tests, saying why, when no engine answers."""
    if not engine_answers():
        pytest.skip(NO_ENGINE)  # under CI=true, tests/conftest.py makes this a failure


@pytest.fixture(scope="session")
def new_project(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NewProject]:
    """Make compose projects (fresh copies); their images are removed after the session,
    so the projects of one session share the build's cached layers."""
    made: list[ComposeProject] = []

    def make(files: list[str], label: str) -> ComposeProject:
        project = ComposeProject(tmp_path_factory.mktemp(label), files, label=label)
        made.append(project)
        return project

    yield make
    for project in made:
        project.remove_images()
