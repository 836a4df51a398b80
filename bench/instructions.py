"""`python -m bench --instructions N`: instructions per trade in each service, counted.

This machine's speed drifts by a quarter within minutes and falls apart when other work
shares it; instructions executed do not. Each service runs under valgrind's callgrind
(Debian's `valgrind`) with counting off while it starts; `callgrind_control` turns it on
after a warm-up, zeroes it, and dumps it after `N` sequential trades, so the dump holds
exactly those trades' instructions, every thread included (the ledger's writer thread
too). Two runs of the same code agree to a few percent: time-keyed caches (the
gateway's price bucket, regime's answers) expire more often under valgrind's slowness,
the same way in both. Compare versions run back to back; read the ratios.

Used to find where the trade path's CPU went (see the README's Performance section):
wall-clock runs on a loaded machine could not tell 10% apart, these can.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from bench import stack, targets

WARM_TRADES = 25
# Under valgrind a service starts in minutes and answers in tenths of seconds.
SLOW = {"SERVICE_TIMEOUT_SECONDS": "300", "RETRY_MAX_ATTEMPTS": "1"}


def _control(servers: Sequence[stack.Server], *args: str) -> list[subprocess.Popen[bytes]]:
    """Ask every service's callgrind to act; each does once its process next runs."""
    return [
        subprocess.Popen(
            ["callgrind_control", *args, str(s.proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for s in servers
        if s.proc is not None
    ]


def _summary(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise ValueError(f"{path}: no summary line")


def run(trades: int, logs: Path, env: dict[str, str], say: Callable[[str], None]) -> int:
    """Count `trades` sequential trades' instructions in each service and print them."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        say("valgrind is missing: apt-get install valgrind")
        return 1
    stack.START_TIMEOUT = stack.STOP_TIMEOUT = 600.0
    servers = stack.real_stack(logs, {**env, **SLOW})
    for server in servers:
        out = logs / f"callgrind.{server.name}.%p"
        server.launcher = (
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
        )
    bodies = targets.TRADE_BODIES
    url = servers[-1].url + "/api/v1/trade"
    stack.flush_redis(env["REDIS_URL"])
    with stack.running(servers), httpx.Client(headers=targets.HEADERS, timeout=600) as client:

        def trade(i: int) -> None:
            answer = client.post(url, json=bodies[i % len(bodies)])
            if answer.status_code != 201:
                raise RuntimeError(f"trade answered {answer.status_code}: {answer.text[:300]}")

        say(f"warming up under valgrind ({WARM_TRADES} trades)")
        for i in range(WARM_TRADES):
            trade(i)
        for action in (["-i", "on"], ["--zero"]):
            pending = _control(servers, *action)
            while any(p.poll() is None for p in pending):
                trade(0)  # keeps every service running until it has taken the command
        say(f"counting {trades} trades")
        for i in range(trades):
            trade(i)
        for done in _control(servers, "--dump"):
            done.wait(timeout=600)
    stack.flush_redis(env["REDIS_URL"])
    total = 0.0
    for server in servers:
        # The dump asked for is `<out>.<pid>.1`; the file at exit holds the shutdown.
        dumps = sorted(logs.glob(f"callgrind.{server.name}.*.1"))
        if not dumps:
            say(f"{server.name}: no dump written (see {server.log_path})")
            return 1
        count = _summary(dumps[0]) / trades
        total += count
        say(f"  {server.name:10s} {count / 1e6:6.2f} M instructions per trade")
    say(f"  {'trade':10s} {total / 1e6:6.2f} M instructions per trade (c=1, {trades} trades)")
    return 0
