"""Process bookkeeping: CPU time read from /proc, and uvicorn's command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench.stack import Server, process_cpu_seconds


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_cpu_seconds_of_this_process_grow_with_work() -> None:
    """Burning CPU raises the process's user+system time; an unknown pid reads 0."""
    before = process_cpu_seconds(os.getpid())
    total = 0
    while process_cpu_seconds(os.getpid()) <= before:  # bounded: CPU time must advance
        total += sum(range(10_000))
    assert process_cpu_seconds(os.getpid()) > before
    assert process_cpu_seconds(2**22 + 12345) == 0.0


def test_servers_run_uvicorn_with_uvloop_and_httptools(tmp_path: Path) -> None:
    """Every server is uvicorn on loopback with uvloop, httptools and no access log."""
    server = Server("x", "bench.bare_chain:create_hello", tmp_path, factory=True, port=8123)
    cmd = server.command()
    assert cmd[:4] == [sys.executable, "-m", "uvicorn", "bench.bare_chain:create_hello"]
    joined = " ".join(cmd)
    assert "--host 127.0.0.1 --port 8123" in joined
    assert "--loop uvloop --http httptools --no-access-log" in joined
    assert cmd[-1] == "--factory"
