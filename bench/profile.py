"""`python -m bench --profile`: the trade path under load with every service under pyinstrument.

Each service runs as `python -m pyinstrument -r pyisession -o <file> -m uvicorn ...`;
stopping it (SIGTERM, uvicorn's graceful exit) makes pyinstrument write its session,
which is rendered here as a call tree and as a list of the costliest functions by self
time. pyinstrument samples the main thread, so time the event loop spends waiting
shows up in the loop's own frames; `top_functions` leaves those out.
"""

from __future__ import annotations

import pstats
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from bench import stack, targets
from bench.load import Driver
from bench.targets import RunConfig

# Frames where the process waits rather than works (uvloop's poll, the runner).
IDLE_FUNCTIONS = ("run_forever", "run_until_complete", "run", "serve", "main", "<module>")
TOP = 25


def check_trade(base: str, say: Callable[[str], None]) -> None:
    """One buy through the real trade path before any load: it must answer 201 FILLED."""
    resp = httpx.post(f"{base}/api/v1/trade", json=targets.TRADE_BODIES[0], timeout=10.0)
    if resp.status_code != 201:
        raise RuntimeError(f"trade answered {resp.status_code}: {resp.text[:500]}")
    status = resp.json().get("status")
    if status != "FILLED":
        say(f"  warning: the check trade was {status}: {resp.json().get('reason')}")


def top_functions(pstats_path: Path, limit: int = TOP) -> list[tuple[str, float, float]]:
    """(function, self seconds, share of busy time) of the costliest functions."""
    stats = pstats.Stats(str(pstats_path))
    rows = []
    for (file, line, func), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if func in IDLE_FUNCTIONS or "select" in func or "poll" in func:
            continue
        rows.append((f"{func} ({_short(file)}:{line})", float(tottime)))
    busy = sum(t for _, t in rows) or 1.0
    rows.sort(key=lambda r: r[1], reverse=True)
    return [(name, t, t / busy) for name, t in rows[:limit]]


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _render(session: Path, renderer: str, out: Path, *flags: str) -> None:
    cmd = [sys.executable, "-m", "pyinstrument", "--load", str(session), "-r", renderer]
    subprocess.run([*cmd, *flags, "-o", str(out)], check=True, timeout=120)


def run(
    driver: Driver,
    cfg: RunConfig,
    logs: Path,
    env: dict[str, str],
    out_dir: Path,
    say: Callable[[str], None],
) -> int:
    """Drive trades at `cfg.concurrency` for `cfg.duration` and write each service's profile."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**env, "DATABASE_URL": f"sqlite:///{logs / 'ledger.db'}"}
    sessions = {name: logs / f"{name}.pyisession" for name, _ in stack.SERVICES}
    wrap = {
        name: ("-m", "pyinstrument", "-r", "pyisession", "-o", str(path))
        for name, path in sessions.items()
    }
    stack.flush_redis(env["REDIS_URL"])
    servers = stack.real_stack(logs, env, wrap)
    with stack.running(servers):
        check_trade(servers[-1].url, say)
        measured = targets.measure(driver, targets.trade(servers[-1].url), cfg, say)
    stack.flush_redis(env["REDIS_URL"])
    say(f"trade under profile: {measured.cn.rps:.0f} rps, {measured.errors} errors")
    for name, session in sessions.items():
        if not session.exists():
            say(f"{name}: no profile written (see {logs / name}.log)")
            continue
        tree, table = out_dir / f"profile-{name}.txt", logs / f"{name}.pstats"
        _render(
            session, "text", tree, "--show-all", "-p", "processor_options.filter_threshold=0.01"
        )
        _render(session, "pstats", table)
        say(f"\n{name}: top functions by self time (call tree in {tree})")
        for func, seconds, share in top_functions(table):
            say(f"  {share:6.1%} {seconds:7.2f}s  {func}")
    return 1 if measured.errors else 0
