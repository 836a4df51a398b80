"""The load driver's pure parts: the wrk script it writes and the result line it reads."""

from __future__ import annotations

import json

import pytest

from bench.load import RESULT_MARK, LoadResult, LoadSpec, parse_result, wrk_script


def _line(**overrides: int) -> str:
    raw = {
        "requests": 1000,
        "duration_us": 2_000_000,
        "status_errors": 3,
        "connect": 1,
        "read": 2,
        "write": 0,
        "timeout": 4,
        "p50_us": 1500,
        "p99_us": 9000,
        **overrides,
    }
    return RESULT_MARK + json.dumps(raw)


def test_parse_result_reads_rates_latencies_and_errors() -> None:
    """The result line becomes rps, millisecond percentiles and both error kinds."""
    result = parse_result("Running 2s test\n" + _line() + "\n")
    assert result.rps == pytest.approx(500.0)
    assert (result.p50_ms, result.p99_ms) == (1.5, 9.0)
    assert (result.status_errors, result.socket_errors, result.errors) == (3, 7, 10)


def test_parse_result_takes_the_last_result_line() -> None:
    """When several lines are printed (one per wrk thread), the last one counts."""
    result = parse_result(_line(requests=1) + "\n" + _line(requests=7))
    assert result.requests == 7


def test_parse_result_without_a_result_line_fails_loudly() -> None:
    """Output with no result line is an error naming what was missing."""
    with pytest.raises(ValueError, match="BENCH_RESULT"):
        parse_result("wrk: connection refused\n")


def test_zero_duration_has_zero_rate() -> None:
    """A run that lasted no time reports 0 rps instead of dividing by zero."""
    assert LoadResult(5, 0.0, 1.0, 1.0, 0, 0).rps == 0.0


def test_wrk_script_cycles_post_bodies_on_the_url_path() -> None:
    """POST targets get a request() cycling the JSON bodies to the URL's path."""
    spec = LoadSpec(
        url="http://127.0.0.1:9/api/v1/trade",
        method="POST",
        bodies=({"side": "buy", "amount": 50.0}, {"side": "sell", "amount": 40.0}),
    )
    script = wrk_script(spec)
    assert "wrk.method = 'POST'" in script
    assert '\'{"side":"buy","amount":50.0}\', \'{"side":"sell","amount":40.0}\'' in script
    assert "wrk.format(nil, '/api/v1/trade', nil, bodies[i])" in script
    assert "i = i % #bodies + 1" in script


def test_wrk_script_for_get_has_no_request_function_and_reports() -> None:
    """GET targets let wrk pre-build the request; every script prints the result line."""
    script = wrk_script(LoadSpec(url="http://127.0.0.1:9/"))
    assert "request = function" not in script
    assert RESULT_MARK.strip() in script
    assert "latency:percentile(99)" in script


def test_wrk_script_escapes_quotes_in_bodies() -> None:
    """A quote inside a body cannot end the Lua string early."""
    script = wrk_script(LoadSpec(url="http://h/x", method="POST", bodies=({"n": "it's"},)))
    assert "it\\'s" in script
