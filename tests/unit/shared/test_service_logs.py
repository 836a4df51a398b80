"""A service's log as uvicorn writes it: one access line per request, JSON throughout."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import keys
from tests.support.servers import ServiceProcess, free_port, wait_until

ENV = {"MARKET_DATA_SOURCE": "simulated", "LOG_LEVEL": "INFO"}
FORGED = "/api/v1/price/Z%0AFORGED"


def run_gateway(tmp_path: Path, fmt: str, *options: str) -> list[str]:
    """Start the gateway with `options`, ask for a price and a crafted path, stop it;
    the lines it logged."""
    log = tmp_path / "gateway.log"
    process = ServiceProcess(
        "market-data-gateway",
        free_port(),
        {**ENV, "LOG_FORMAT": fmt},
        log,
        options=options,
    )
    process.start()
    try:
        key = keys.headers()
        assert httpx.get(process.url + "/api/v1/price/BTC-USD", headers=key).status_code == 200
        assert httpx.get(process.url + FORGED, headers=key).status_code == 422
        wait_until(lambda: "FORGED" in log.read_text(), what="the access line")
    finally:
        process.stop()
    return log.read_text().splitlines()


def access_lines(lines: list[str], path: str) -> list[str]:
    return [line for line in lines if f"GET {path} " in line]


@pytest.mark.parametrize(
    "options",
    [(), ("--no-access-log",), ("--reload", "--reload-dir", ".", "--reload-dir", "../shared")],
    ids=["default", "no-access-log", "reload"],
)
def test_one_access_line_per_request_and_every_line_json(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    """Under LOG_FORMAT=json every line from the app's start on is JSON, and a request
    is logged once (uvicorn's own access line is off, whatever its options)."""
    lines = run_gateway(tmp_path, "json", *options)
    records = [orjson.loads(line) for line in lines if not _reloader_line(line, options)]
    assert any(r["message"].startswith("Started server process") for r in records)
    assert len(access_lines(lines, "/api/v1/price/BTC-USD")) == 1
    assert {r["service"] for r in records} == {"market-data-gateway"}


def test_the_reloader_logs_json_with_the_shared_log_config(tmp_path: Path) -> None:
    """With `--log-config ../shared/logging.json`, uvicorn's reloader lines are JSON too."""
    options = ("--reload", "--reload-dir", ".", "--reload-dir", "../shared")
    lines = run_gateway(tmp_path, "json", *options, "--log-config", "../shared/logging.json")
    records = [orjson.loads(line) for line in lines]
    assert any("Will watch for changes" in r["message"] for r in records)
    assert len(access_lines(lines, "/api/v1/price/BTC-USD")) == 1


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_crafted_path_cannot_forge_a_line(tmp_path: Path, fmt: str) -> None:
    """A newline in the path is escaped: no line begins with the text after it."""
    lines = run_gateway(tmp_path, fmt)
    assert not [line for line in lines if line.startswith("FORGED")]
    (line,) = [line for line in lines if "FORGED" in line]
    if fmt == "json":
        assert orjson.loads(line)["message"].startswith("GET /api/v1/price/Z\nFORGED 422")
    else:
        assert "GET /api/v1/price/Z\\nFORGED 422" in line


def _reloader_line(line: str, options: tuple[str, ...]) -> bool:
    """Lines uvicorn's reloader writes before any app exists (plain text without
    `--log-config`)."""
    return "--reload" in options and not line.startswith("{")
