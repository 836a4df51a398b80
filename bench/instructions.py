"""`python -m bench --instructions N`: instructions per trade in each service, counted.

This machine's speed drifts by a quarter within minutes and falls apart when other work
shares it; instructions executed do not. Each service runs under valgrind's callgrind
(Debian's `valgrind`) with counting off while it starts; `callgrind_control` turns it on
after a warm-up, zeroes it, and dumps it after `N` sequential trades, so the dump holds
exactly those trades' instructions, every thread included (the ledger's writer thread
too). The services' timeouts and cache lifetimes are stretched by the same factor as
valgrind slows them, so a counted trade meets the caches as a trade at full speed does.
With `--against CHECKOUT` the other checkout's stack is counted the same way right after,
and the ratio printed. Compare versions counted back to back; read the ratios.

Used to find where the trade path's CPU went (see the README's Performance section):
wall-clock runs on a loaded machine could not tell 10% apart, these can.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from bench import report, stack, targets

WARM_TRADES = 25
# Under valgrind a service starts in minutes and answers in tenths of seconds, so its
# timeouts and cache lifetimes are stretched to match. At full speed a trade's price read
# is all but always cached (hundreds of trades share each second's price); with the
# 1-second lifetime most valgrind trades missed it and counted the source behind it: a
# trade counted 7.11 M instructions with it against 6.86 M stretched, and the gap to an
# older version came out at a third of the CPU's.
SLOW = {
    "SERVICE_TIMEOUT_SECONDS": "300",
    "RETRY_MAX_ATTEMPTS": "1",
    "PRICE_TTL_SECONDS": "300",
    "OHLCV_INCOMPLETE_TTL_SECONDS": "600",
}


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


def run(
    trades: int,
    checkouts: Sequence[tuple[Path, Path, dict[str, str]]],
    say: Callable[[str], None],
) -> int:
    """Count `trades` sequential trades' instructions in each service of each checkout
    (repository, log folder, environment), one after the other, and print them; for two,
    the ratio of the first to the second."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        say("valgrind is missing: apt-get install valgrind")
        return 1
    stack.START_TIMEOUT = stack.STOP_TIMEOUT = 600.0
    totals = []
    for repo, folder, env in checkouts:
        say(f"{repo} ({report.git_commit(repo)}):")
        try:
            counts = count(trades, folder, env, say, repo)
        except RuntimeError as exc:
            say(f"FAILED {exc}")
            return 1
        for name, n in counts.items():
            say(f"  {name:10s} {n / 1e6:6.2f} M instructions per trade")
        totals.append(sum(counts.values()))
        per_trade = totals[-1] / 1e6
        say(f"  {'trade':10s} {per_trade:6.2f} M instructions per trade (c=1, {trades} trades)")
    if len(totals) == 2:
        other = checkouts[1][0]
        say(f"this / {other}: {totals[0] / totals[1]:.3f} of the instructions per trade")
    return 0


def count(
    trades: int, logs: Path, env: dict[str, str], say: Callable[[str], None], repo: Path
) -> dict[str, float]:
    """Instructions per trade in each service of `repo`'s stack, counted by callgrind."""
    servers = stack.real_stack(logs, {**env, **SLOW}, repo=repo)
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
    counts = {}
    for server in servers:
        # The dump asked for is `<out>.<pid>.1`; the file at exit holds the shutdown.
        dumps = sorted(logs.glob(f"callgrind.{server.name}.*.1"))
        if not dumps:
            raise RuntimeError(f"{server.name}: no dump written (see {server.log_path})")
        counts[server.name] = _summary(dumps[0]) / trades
    return counts
