"""`python -m bench --profile`: the trade path under load with every service under pyinstrument.

Each service runs as `python -m pyinstrument -r pyisession -o <file> -m uvicorn ...`;
stopping it (SIGINT, uvicorn's graceful exit) makes pyinstrument write its session,
rendered here as a call tree and summarised by `costs`: self time per function and per
package, and inclusive time of the project's own functions. pyinstrument samples the
main thread's Python stack, so samples taken while the loop waits (its innermost frame
is the asyncio runner) and while importing or starting up are left out; the rest is the
busy time, and busy time per trade is each service's cost of one trade.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pyinstrument.session import Session

from bench import stack, targets
from bench.load import Driver
from bench.targets import RunConfig

TOP = 15
# Samples taken while importing or starting up are not the request path.
STARTUP_FRAMES = {"_find_and_load", "startup", "shutdown", "_serve_startup"}
# A sample whose innermost Python frame is the runner is the event loop waiting (uvloop's
# poll is C code, invisible to the sampler).
IDLE_LEAVES = {("run", "asyncio/runners.py"), ("run_until_complete", "asyncio/base_events.py")}
REPO_MARK = str(stack.REPO) + "/"


@dataclass(frozen=True)
class Frame:
    """One frame of a pyinstrument sample: `function\\0file\\0line` plus `\\1c<class>` etc."""

    function: str
    file: str
    line: str

    @classmethod
    def parse(cls, identifier: str) -> Frame:
        function, file, rest = [*identifier.split("\x00"), "", ""][:3]
        line, *attributes = rest.split("\x01")
        owner = next((a[1:] for a in attributes if a.startswith("c")), None)
        return cls(f"{owner}.{function}" if owner else function, _short(file), line)

    def __str__(self) -> str:
        return f"{self.function} ({self.file}:{self.line})"


@dataclass
class Costs:
    """Where a process spent its busy (non-idle, non-startup) time."""

    busy: float = 0.0
    by_leaf: dict[str, float] = field(default_factory=dict)
    by_package: dict[str, float] = field(default_factory=dict)
    ours_inclusive: dict[str, float] = field(default_factory=dict)


def _short(file: str) -> str:
    for marker in ("site-packages/", REPO_MARK, "lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _package(frame: Frame) -> str:
    if frame.file.startswith("<"):
        return frame.function.split(".", 1)[0] + " (builtin)"
    return frame.file.split("/", 1)[0].removesuffix(".py")


def costs(records: Iterable[tuple[Sequence[str], float]]) -> Costs:
    """Self time per function and per package, and inclusive time of the project's code."""
    out = Costs()
    for identifiers, seconds in records:
        frames = [Frame.parse(i) for i in identifiers]
        if not frames or any(f.function.rsplit(".", 1)[-1] in STARTUP_FRAMES for f in frames):
            continue
        leaf = frames[-1]
        base = leaf.function.rsplit(".", 1)[-1]
        if any(base == fn and leaf.file.endswith(path) for fn, path in IDLE_LEAVES):
            continue
        out.busy += seconds
        _add(out.by_leaf, str(leaf), seconds)
        _add(out.by_package, _package(leaf), seconds)
        for name in {str(f) for f in frames if _is_ours(f)}:
            _add(out.ours_inclusive, name, seconds)
    return out


def _add(totals: dict[str, float], key: str, seconds: float) -> None:
    totals[key] = totals.get(key, 0.0) + seconds


def _top(totals: dict[str, float], n: int) -> list[tuple[str, float]]:
    return sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:n]


def _is_ours(frame: Frame) -> bool:
    top = frame.file.split("/", 1)[0]
    return top in {
        "shared",
        "market-data-gateway",
        "regime-detection",
        "risk-management",
        "execution",
    }


def summary(name: str, found: Costs, wall: float, requests: int) -> list[str]:
    """The report lines of one process."""
    per_request = found.busy / requests * 1000 if requests else 0.0
    lines = [
        f"{name}: busy {found.busy:.2f}s of {wall:.1f}s sampled "
        f"({per_request:.2f} ms CPU-ish per trade over {requests} trades)",
        "  self time by package: "
        + ", ".join(f"{p} {t / found.busy:.0%}" for p, t in _top(found.by_package, 8)),
        "  top functions by self time:",
    ]
    lines += [f"    {t / found.busy:6.1%}  {f}" for f, t in _top(found.by_leaf, TOP)]
    lines.append("  our code, inclusive time:")
    lines += [f"    {t / found.busy:6.1%}  {f}" for f, t in _top(found.ours_inclusive, TOP)]
    return lines


def check_trade(base: str, say: Callable[[str], None]) -> None:
    """One buy through the real trade path before any load: it must answer 201 FILLED."""
    resp = httpx.post(
        f"{base}/api/v1/trade", json=targets.TRADE_BODIES[0], headers=targets.HEADERS, timeout=10.0
    )
    if resp.status_code != 201:
        raise RuntimeError(f"trade answered {resp.status_code}: {resp.text[:500]}")
    status = resp.json().get("status")
    if status != "FILLED":
        say(f"  warning: the check trade was {status}: {resp.json().get('reason')}")


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
    sessions = {name: logs / f"{name}.pyisession" for name, _ in stack.SERVICES}
    wrap = {
        name: ("-m", "pyinstrument", "-r", "pyisession", "-o", str(path))
        for name, path in sessions.items()
    }
    stack.flush_redis(env["REDIS_URL"])
    servers = stack.real_stack(logs, env, wrap)
    with stack.running(servers):
        check_trade(servers[-1].url, say)
        trade = targets.trade(servers[-1].url)
        warm_requests = driver.run(targets.spec(trade, cfg, cfg.concurrency, cfg.warm)).requests
        measured = targets.measure(driver, trade, cfg, say)
    stack.flush_redis(env["REDIS_URL"])
    say(f"trade under profile: {measured.cn.rps:.0f} rps, {measured.errors} errors")
    for name, session in sessions.items():
        if not session.exists():
            say(f"{name}: no profile written (see {logs / name}.log)")
            continue
        tree = out_dir / f"profile-{name}.txt"
        _render(session, "text", tree, "-p", "processor_options.filter_threshold=0.01")
        loaded = Session.load(str(session))
        requests = warm_requests + measured.c1.requests + measured.cn.requests
        lines = summary(name, costs(loaded.frame_records), loaded.duration, requests)
        (out_dir / f"profile-{name}-summary.txt").write_text("\n".join(lines) + "\n")
        say("\n" + "\n".join(lines) + f"\n  (call tree: {tree})")
    return 1 if measured.errors else 0
