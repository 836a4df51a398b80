"""The table, the ratios against the issue's targets, and the results JSON.

Pure functions over measured `LoadResult`s, so the arithmetic is testable without load.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load import LoadResult

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Measured:
    """One target's runs: at concurrency 1 (latency) and at the high concurrency (throughput)."""

    name: str
    label: str
    c1: LoadResult
    cn: LoadResult
    # Errors in the runs of other rounds that `best_of` did not keep: they still count.
    other_errors: int = 0
    rounds: int = 1
    # Every round's (rps at high concurrency, p50 at c=1), in order, for paired ratios.
    per_round: tuple[tuple[float, float], ...] = ()
    # Targets measured in one `measure_rounds` call share it: only they pair by round.
    session: int = 0

    @property
    def errors(self) -> int:
        return self.c1.errors + self.cn.errors + self.other_errors


def best_of(rounds: Sequence[Measured]) -> Measured:
    """The best of repeated rounds: highest rps at high concurrency, lowest p50 at c=1.

    Other processes on the machine can only slow a run down, so the best round is the
    closest to what the code itself costs; every round's errors are kept.
    """
    if not rounds:
        raise ValueError("no rounds to choose from")
    cn = max(rounds, key=lambda m: m.cn.rps).cn
    c1 = min(rounds, key=lambda m: m.c1.p50_ms).c1
    total = sum(m.errors for m in rounds)
    first = rounds[0]
    per_round = tuple((m.cn.rps, m.c1.p50_ms) for m in rounds)
    other = total - c1.errors - cn.errors
    return Measured(first.name, first.label, c1, cn, other, len(rounds), per_round)


@dataclass(frozen=True)
class Ratio:
    """A measured ratio checked against a target: `value <= limit` or `value >= limit`."""

    name: str
    value: float
    op: str
    limit: float
    # The ratio of each round, when both sides were measured round by round.
    rounds: tuple[float, ...] = ()

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.op == ">=" else self.value <= self.limit


def ratio(name: str, num: float, den: float, op: str, limit: float) -> Ratio:
    """`num / den` as a Ratio (0 when the denominator is 0, which then fails a `>=`)."""
    return Ratio(name, num / den if den else 0.0, op, limit)


def paired(name: str, num: Measured, den: Measured, field: int, op: str, limit: float) -> Ratio:
    """The median of the per-round ratios of `num` to `den` (field 0: rps, 1: p50 at c=1).

    A round measures the target right after its reference, so each round's ratio
    compares runs that shared the machine's speed at that moment; on a shared machine
    whose speed drifts by a quarter within minutes (seen on the bench machine), the
    ratio of two best-of values could pair a fast moment with a slow one. Without
    rounds on both sides in the same session (PostgreSQL's trade path runs after the
    bare chain was stopped): the ratio of the kept values.
    """
    kept = (num.cn.rps, num.c1.p50_ms)[field], (den.cn.rps, den.c1.p50_ms)[field]
    if num.session != den.session or not num.per_round or len(num.per_round) != len(den.per_round):
        return ratio(name, *kept, op, limit)
    each = tuple(
        a[field] / b[field] if b[field] else 0.0
        for a, b in zip(num.per_round, den.per_round, strict=True)
    )
    return Ratio(name, statistics.median(each), op, limit, each)


def ratios(by_name: Mapping[str, Measured]) -> list[Ratio]:
    """The issue's targets, for whichever of the needed targets were measured."""
    out: list[Ratio] = []
    bare, hello = by_name.get("bare-chain"), by_name.get("hello-world")
    for trade_name in ("trade", "trade-postgres"):
        trade = by_name.get(trade_name)
        if trade and bare:
            out.append(paired(f"{trade_name}/bare-chain rps@c32", trade, bare, 0, ">=", 0.75))
            out.append(paired(f"{trade_name}/bare-chain p50@c1", trade, bare, 1, "<=", 1.5))
    trade, unobserved = by_name.get("trade"), by_name.get("trade-unobserved")
    if trade and unobserved:
        # Metrics and spans (no exporter) cost at most 5% of the trade path's throughput.
        out.append(paired("trade/trade-unobserved rps@c32", trade, unobserved, 0, ">=", 0.95))
        out.append(paired("trade/trade-unobserved p50@c1", trade, unobserved, 1, "<=", 1.05))
    price = by_name.get("price")
    if price and hello:
        out.append(paired("price(cached)/hello-world rps@c32", price, hello, 0, ">=", 0.5))
    return out


def table(measured: Sequence[Measured], concurrency: int) -> str:
    """The results as an aligned Markdown table."""
    head = ["target", f"rps@c{concurrency}", "p50@c1 ms", "p99@c1 ms"]
    head += [f"p50@c{concurrency} ms", f"p99@c{concurrency} ms", "errors"]
    rows = [
        [
            m.label,
            f"{m.cn.rps:.0f}",
            f"{m.c1.p50_ms:.2f}",
            f"{m.c1.p99_ms:.2f}",
            f"{m.cn.p50_ms:.2f}",
            f"{m.cn.p99_ms:.2f}",
            str(m.errors),
        ]
        for m in measured
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule, *(line(r) for r in rows)])


def cpu_lines(measured: Sequence[Measured], concurrency: int) -> str:
    """CPU milliseconds per request of each process a target crosses, at high concurrency."""
    lines = []
    for m in measured:
        cpu: dict[str, float] = m.cn.extra.get("cpu_ms_per_request") or {}
        if cpu:
            parts = ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items())
            lines.append(f"{m.name:<15} {sum(cpu.values()):6.2f} ms  ({parts})")
    if not lines:
        return ""
    return "\n".join([f"CPU ms per request at c{concurrency} (user+system, per process):", *lines])


def ratio_lines(checks: Sequence[Ratio]) -> str:
    """One line per ratio: value, target, PASS or FAIL."""
    return "\n".join(
        f"{r.name:<40} {r.value:6.2f}  (target {r.op} {r.limit:g})  "
        f"{'PASS' if r.passed else 'FAIL'}"
        + (f"  median of rounds {', '.join(f'{v:.2f}' for v in r.rounds)}" if r.rounds else "")
        for r in checks
    )


def machine_info(driver: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for text in cpuinfo.read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "nproc": usable,
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_driver": driver,
        "git_commit": git_commit(),
    }


def git_commit(repo: Path = RESULTS_DIR.parent.parent) -> str:
    """The short commit `repo` has checked out, "-dirty" with uncommitted changes
    ("unknown" outside git)."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=repo,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


@dataclass(frozen=True)
class Paired:
    """One ratio to the bare chain for two checkouts measured in the same rounds."""

    name: str
    this: float  # the median of this checkout's per-round ratios
    other: float  # the same for the other checkout
    # Per round, this checkout's ratio minus the other's: both were measured within
    # seconds of each other and of the same round's bare chain.
    differences: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.differences)

    @property
    def stderr(self) -> float:
        """The standard error of the mean difference: what the rounds could resolve."""
        n = len(self.differences)
        return statistics.stdev(self.differences) / n**0.5 if n > 1 else float("nan")


def against(this: Measured, other: Measured, bare: Measured) -> list[Paired]:
    """This checkout's trade path against another's, round by round (`--against`)."""
    if not (len(this.per_round) == len(other.per_round) == len(bare.per_round) > 0):
        raise ValueError("the three targets must have been measured in the same rounds")
    out = []
    for field, name in ((0, "trade / bare chain, rps@c32"), (1, "trade / bare chain, p50@c1")):
        ours, theirs = (
            [r[field] / b[field] for r, b in zip(m.per_round, bare.per_round, strict=True)]
            for m in (this, other)
        )
        differences = tuple(a - b for a, b in zip(ours, theirs, strict=True))
        out.append(Paired(name, statistics.median(ours), statistics.median(theirs), differences))
    return out


def against_lines(pairs: Sequence[Paired], this: str, other: str) -> str:
    """The comparison as text: each side's ratio and the paired difference."""
    lines = [f"{'ratio':<30} {this:>12} {other:>12}  difference (median; mean ± s.e.)"]
    for p in pairs:
        mean = statistics.mean(p.differences)
        lines.append(
            f"{p.name:<30} {p.this:12.3f} {p.other:12.3f}  "
            f"{p.median:+.3f}; {mean:+.3f} ± {p.stderr:.3f} over {len(p.differences)} rounds"
        )
    return "\n".join(lines)


def results_json(
    measured: Sequence[Measured],
    checks: Sequence[Ratio],
    machine: Mapping[str, Any],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything the run found, as one JSON-ready document."""
    return {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": dict(machine),
        "targets": [
            {
                "name": m.name,
                "label": m.label,
                "rounds": m.rounds,
                "per_round": [{"rps": rps, "p50_c1_ms": p50} for rps, p50 in m.per_round],
                "errors": m.errors,
                "c1": m.c1.to_json(),
                "cn": m.cn.to_json(),
            }
            for m in measured
        ],
        "ratios": [
            {
                "name": r.name,
                "value": round(r.value, 3),
                "rounds": [round(v, 3) for v in r.rounds],
                "op": r.op,
                "limit": r.limit,
                "pass": r.passed,
            }
            for r in checks
        ],
        **extra,
    }


def write_results(doc: Mapping[str, Any], directory: Path = RESULTS_DIR, suffix: str = "") -> Path:
    """Write `doc` to a timestamped file and, unless it has a `suffix` (an A/B run, not
    the table's), to `latest.json`; return the timestamped path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"bench-{stamp}{suffix}.json"
    text = json.dumps(doc, indent=2) + "\n"
    path.write_text(text)
    if not suffix:
        (directory / "latest.json").write_text(text)
    return path
