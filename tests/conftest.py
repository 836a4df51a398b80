"""Under CI=true nothing is skipped quietly: a skip (a missing data file, database or
server) is reported as a failure carrying the skip's reason.

A test that CI genuinely cannot run says so with `@pytest.mark.optional_in_ci("why")`;
its skips stay skips.

Every test runs with the API keys of `tests.support.keys` in its environment.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from tests.support import keys

STRICT = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module builds Settings or starts a process: both read them here.
    os.environ.update(keys.environment())
    config.addinivalue_line(
        "markers", "optional_in_ci(reason): the test may skip under CI=true (say why)"
    )


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (file, line, "Skipped: why")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (STRICT and report.skipped) or hasattr(report, "wasxfail"):
        return
    if item.get_closest_marker("optional_in_ci") is not None:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, which allows no skip: {_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if STRICT and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which allows no skip: {_reason(report)}"
