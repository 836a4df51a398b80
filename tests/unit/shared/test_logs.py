"""Log lines name the service and the trace ID, in json and text formats."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.logs import JsonFormatter, TextFormatter, configure_logging
from shared.tracing import trace_id_var

UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging rewires the root logger; put it back after each test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    saved_uvicorn = [
        (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in UVICORN
    ]
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, (handlers, propagate) in zip(UVICORN, saved_uvicorn, strict=True):
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


def log_with_trace(message: str, trace_id: str | None) -> None:
    token = trace_id_var.set(trace_id)
    try:
        logging.getLogger("tests.logs").warning(message)
    finally:
        trace_id_var.reset(token)


async def test_json_lines_carry_service_and_trace(capsys: pytest.CaptureFixture[str]) -> None:
    """In json format each line is one object with service, trace_id, level and message."""
    configure_logging("regime-detection", "INFO", "json")
    log_with_trace("inside", "trace-json-1")
    log_with_trace("outside", None)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["service"], e["trace_id"], e["message"]) for e in lines] == [
        ("regime-detection", "trace-json-1", "inside"),
        ("regime-detection", "-", "outside"),
    ]
    assert lines[0]["level"] == "WARNING"
    assert lines[0]["logger"] == "tests.logs"
    assert lines[0]["time"].endswith("+00:00")


async def test_json_includes_exception(capsys: pytest.CaptureFixture[str]) -> None:
    """A logged exception travels inside the JSON object, keeping one line per event."""
    configure_logging("execution", "INFO", "json")
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("tests.logs").exception("failed")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "ValueError: bad" in json.loads(lines[0])["exception"]


async def test_text_lines_carry_service_and_trace(capsys: pytest.CaptureFixture[str]) -> None:
    """In text format each line names the service and the trace ID in brackets."""
    configure_logging("risk-management", "info", "text")
    log_with_trace("hello", "trace-text-1")
    line = capsys.readouterr().err.strip()
    assert " WARNING risk-management [trace-text-1] tests.logs: hello" in line


async def test_level_filters(capsys: pytest.CaptureFixture[str]) -> None:
    """Records below LOG_LEVEL are dropped."""
    configure_logging("execution", "WARNING", "text")
    logging.getLogger("tests.logs").info("quiet")
    logging.getLogger("tests.logs").error("loud")
    err = capsys.readouterr().err
    assert "quiet" not in err
    assert "loud" in err


@pytest.mark.parametrize("created", [[1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.125]])
def test_cached_timestamps_match_the_standard_ones(created: list[float]) -> None:
    """The per-second cache prints what logging and datetime would, across a second's edge."""
    text, plain, as_json = TextFormatter(), logging.Formatter("%(asctime)s"), JsonFormatter()
    for moment in created:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = moment, int((moment - int(moment)) * 1000)
        assert text.formatTime(record) == plain.formatTime(record)
        expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
        assert json.loads(as_json.format(record))["time"] == expected
