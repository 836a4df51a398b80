"""The rule of tests/conftest.py: under CI=true a skip is a failure naming its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
SKIPPING = """
import pytest

def test_needs_a_file():
    pytest.skip("/data/candles.csv is absent")

@pytest.fixture
def database():
    pytest.skip("PostgreSQL at 127.0.0.1:5432 is not usable")

def test_needs_a_database(database):
    pass

@pytest.mark.skipif(True, reason="no redis-server")
def test_needs_a_server():
    pass

@pytest.mark.optional_in_ci("CI has no GPU")
def test_allowed_to_skip():
    pytest.skip("no GPU")

def test_runs():
    assert True
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_skipping=SKIPPING)
    return pytester


def test_under_ci_every_skip_fails_with_its_reason(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI=true: a skipped file, database or server test fails, saying what was missing."""
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-rfEs")
    result.assert_outcomes(passed=1, failed=1, errors=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*test_needs_a_file*skipped under CI=true*/data/candles.csv is absent*",
            "*test_needs_a_database*skipped under CI=true*PostgreSQL*not usable*",
            "*test_needs_a_server*skipped under CI=true*no redis-server*",
        ],
        consecutive=False,
    )


def test_without_ci_skips_stay_skips(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without CI=true (a laptop without PostgreSQL), the same tests just skip."""
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4)
