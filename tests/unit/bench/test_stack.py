"""Process bookkeeping: CPU time read from /proc, and uvicorn's command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench.stack import REPO, Server, process_cpu_seconds, real_stack


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


def test_another_checkouts_stack_runs_its_code_with_its_own_venv(tmp_path: Path) -> None:
    """`--against`: each service of the other checkout starts from that checkout's folder,
    with its code first on the path and its venv's interpreter; this checkout's stack
    keeps this interpreter."""
    other = tmp_path / "base"
    (other / ".venv" / "bin").mkdir(parents=True)
    (other / ".venv" / "bin" / "python").touch()
    servers = real_stack(tmp_path, {"X": "1"}, repo=other)
    assert [s.cwd for s in servers] == [
        other / "market-data-gateway",
        other / "regime-detection",
        other / "risk-management",
        other / "execution",
    ]
    assert {s.pythonpath for s in servers} == {other}
    assert {s.command()[0] for s in servers} == {str(other / ".venv" / "bin" / "python")}
    ours = real_stack(tmp_path, {})
    assert {s.command()[0] for s in ours} == {sys.executable}
    assert {s.pythonpath for s in ours} == {REPO}


def test_a_checkout_without_a_venv_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """Running another checkout's services needs its dependencies installed."""
    with pytest.raises(RuntimeError, match="make install"):
        real_stack(tmp_path, {}, repo=tmp_path)
