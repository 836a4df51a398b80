"""What is measured: each target's request, and one target's warm-up plus two timed runs."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bench.load import Driver, LoadSpec
from bench.report import Measured, best_of
from bench.stack import Server
from shared import keygen
from shared.auth import API_KEY_HEADER

SYMBOL = "BTC-USD"
_SESSIONS = itertools.count(1)
# The keys of this run's stack (`stack_keys()`); every target sends the admin key.
KEYS = keygen.generate()
HEADERS = {API_KEY_HEADER: KEYS["ADMIN_KEY"]}
# Buys and sells alternate, the sells smaller, so a long run neither drains cash nor
# sells more than it holds.
TRADE_BODIES: tuple[dict[str, Any], ...] = (
    {"symbol": SYMBOL, "side": "buy", "amount": 50.0},
    {"symbol": SYMBOL, "side": "sell", "amount": 40.0},
)
APPROVE_BODIES: tuple[dict[str, Any], ...] = (
    {
        "symbol": SYMBOL,
        "side": "buy",
        "amount": 50.0,
        "current_portfolio": {"cash": 100000.0, "positions": {SYMBOL: 0.05}},
    },
)


@dataclass(frozen=True)
class Target:
    """One endpoint under load."""

    name: str
    label: str
    url: str
    method: str = "GET"
    bodies: Sequence[dict[str, Any]] = field(default_factory=tuple)
    headers: dict[str, str] = field(default_factory=lambda: dict(HEADERS))
    # The processes whose CPU time per request is measured during the high-concurrency run.
    servers: Sequence[Server] = field(default_factory=tuple)


@dataclass(frozen=True)
class RunConfig:
    """How long and how hard each target is driven (seconds, connections)."""

    concurrency: int = 32
    duration: float = 8.0
    c1_duration: float = 5.0
    warm: float = 2.0
    rounds: int = 2
    timeout: float = 5.0


def stack_keys() -> dict[str, str]:
    """`API_KEYS` and `SERVICE_KEY` for the services of this run."""
    return {"API_KEYS": KEYS["API_KEYS"], "SERVICE_KEY": KEYS["SERVICE_KEY"]}


def trade(base: str, name: str = "trade") -> Target:
    label = "POST /api/v1/trade" + (" (postgres)" if name.endswith("postgres") else "")
    return Target(name, label, f"{base}/api/v1/trade", "POST", TRADE_BODIES)


def approve(base: str) -> Target:
    return Target(
        "approve",
        "POST /api/v1/approve-trade",
        f"{base}/api/v1/approve-trade",
        "POST",
        APPROVE_BODIES,
    )


def regime(base: str) -> Target:
    return Target("regime", f"GET /api/v1/regime/{SYMBOL}", f"{base}/api/v1/regime/{SYMBOL}")


def price(base: str) -> Target:
    return Target("price", f"GET /api/v1/price/{SYMBOL} (cached)", f"{base}/api/v1/price/{SYMBOL}")


def bare_chain(base: str) -> Target:
    return Target(
        "bare-chain", "bare chain POST /api/v1/trade", f"{base}/api/v1/trade", "POST", TRADE_BODIES
    )


def hello(base: str) -> Target:
    return Target("hello-world", "bare FastAPI hello-world", f"{base}/")


def spec(target: Target, cfg: RunConfig, concurrency: int, duration: float) -> LoadSpec:
    return LoadSpec(
        url=target.url,
        method=target.method,
        bodies=target.bodies,
        headers=target.headers,
        concurrency=concurrency,
        duration=duration,
        timeout=cfg.timeout,
    )


def warm(driver: Driver, target: Target, cfg: RunConfig, say: Callable[[str], None]) -> int:
    """Load the target briefly, untimed (connections, caches, the ledger); return its errors."""
    result = driver.run(spec(target, cfg, cfg.concurrency, cfg.warm))
    if result.errors:
        say(f"  warm-up of {target.name} had {result.errors} errors")
    return result.errors


def measure(driver: Driver, target: Target, cfg: RunConfig, say: Callable[[str], None]) -> Measured:
    """One round: the target at concurrency 1, then at `cfg.concurrency`."""
    c1 = driver.run(spec(target, cfg, 1, cfg.c1_duration))
    before = {s.name: s.cpu_seconds() for s in target.servers}
    cn = driver.run(spec(target, cfg, cfg.concurrency, cfg.duration))
    if cn.requests:
        cpu = {
            name: round((s.cpu_seconds() - before[name]) / cn.requests * 1000, 3)
            for name, s in ((s.name, s) for s in target.servers)
        }
        cn = replace(cn, extra={**cn.extra, "cpu_ms_per_request": cpu})
    say(
        f"  {target.name:<15} {cn.rps:8.0f} rps@c{cfg.concurrency}  p50@c1 {c1.p50_ms:6.2f} ms"
        f"  p50@c{cfg.concurrency} {cn.p50_ms:6.2f} ms  errors {c1.errors + cn.errors}"
    )
    return Measured(target.name, target.label, c1, cn)


def measure_rounds(
    driver: Driver,
    group: Sequence[Target],
    cfg: RunConfig,
    say: Callable[[str], None],
) -> list[Measured]:
    """Warm every target, then measure them in turn, `cfg.rounds` times.

    The table keeps each target's best round. Interleaving puts a target right beside its
    reference in every round (after it, then before it, in turn), so each round's ratio
    compares runs that shared the machine's conditions; the reported ratio is the median
    of those (`report.paired`).
    """
    warm_errors = {t.name: warm(driver, t, cfg, say) for t in group}
    rounds: dict[str, list[Measured]] = {t.name: [] for t in group}
    for n in range(cfg.rounds):
        say(f" round {n + 1}/{cfg.rounds}")
        # Every other round in reverse: each pair stays adjacent, and which of the two
        # runs first alternates (an A/A run, the same stack twice, measured the first
        # of a pair up to 14% faster on this machine).
        for target in group if n % 2 == 0 else reversed(group):
            rounds[target.name].append(measure(driver, target, cfg, say))
    out = []
    session = next(_SESSIONS)
    for target in group:
        best = best_of(rounds[target.name])
        errors = best.other_errors + warm_errors[target.name]
        out.append(replace(best, other_errors=errors, session=session))
    return out
