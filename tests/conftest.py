"""Every test runs with the keys of `tests.support.keys` in its environment."""

from __future__ import annotations

import os

import pytest

from tests.support import keys


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module builds Settings or starts a process: both read them here.
    os.environ.update(keys.environment())
