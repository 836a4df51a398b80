"""Reading pyinstrument samples: frames, idle and start-up samples left out, costs summed."""

from __future__ import annotations

import pytest

from bench.profile import Frame, costs
from bench.stack import REPO

RUNNER = "Runner.run\x00/usr/lib/python3.11/asyncio/runners.py\x00118\x01cRunner\x01l120"
IMPORT = "_find_and_load\x00<frozen importlib._bootstrap>\x001165"
ROUTE = f"trade\x00{REPO}/execution/execution/routes.py\x0051\x01l60"
CLIENT = f"request\x00{REPO}/shared/client.py\x00154\x01cServiceClient\x01l194"
WRITE = "_write\x00/v/lib/python3.11/site-packages/aiohttp/http_writer.py\x0097\x01cStreamWriter"
SQL = "execute\x00/v/lib/python3.11/site-packages/sqlalchemy/engine/base.py\x001400"


def test_frame_names_class_function_and_short_file() -> None:
    """A frame reads as Class.function with its file relative to the repo or site-packages."""
    assert str(Frame.parse(CLIENT)) == "ServiceClient.request (shared/client.py:154)"
    assert str(Frame.parse(WRITE)) == "StreamWriter._write (aiohttp/http_writer.py:97)"
    assert Frame.parse("lock.release\x00<built-in>\x000").file == "<built-in>"


def test_costs_leave_out_idle_and_import_samples() -> None:
    """Samples of the waiting loop and of imports are not busy time."""
    found = costs(
        [
            ([RUNNER], 5.0),
            ([RUNNER, IMPORT, SQL], 2.0),
            ([RUNNER, ROUTE, CLIENT, WRITE], 0.3),
            ([RUNNER, ROUTE, SQL], 0.1),
        ]
    )
    assert found.busy == pytest.approx(0.4)
    assert found.by_package == pytest.approx({"aiohttp": 0.3, "sqlalchemy": 0.1})


def test_our_code_is_counted_inclusively_once_per_sample() -> None:
    """A project function on the stack gets the sample's time, even if it recurses."""
    found = costs([([RUNNER, ROUTE, CLIENT, CLIENT, WRITE], 0.3), ([RUNNER, ROUTE, SQL], 0.1)])
    route = "trade (execution/execution/routes.py:51)"
    client = "ServiceClient.request (shared/client.py:154)"
    assert found.ours_inclusive == pytest.approx({route: 0.4, client: 0.3})
