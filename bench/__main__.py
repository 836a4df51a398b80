"""`python -m bench` (`make bench`): the trade path and the gateway against a bare chain.

Runs, in order: the bare reference chain and hello-world (started here), then the real
stack on the simulated source with Redis and a fresh SQLite ledger, beside it the same
stack with `OBSERVABILITY=false` (no metrics, no spans) for the trade path (and, with
`--postgres`, the trade path again on a fresh PostgreSQL database), then the stampede
check on the gateway. Prints the table and the ratios, writes the JSON, and exits 1 if
any run had errors or the stack could not be started.

`--against CHECKOUT` instead compares this checkout's trade path with another's (main
before a change, say): both stacks up at once beside the bare chain, measured in the same
rounds, each round's ratios differenced, so a change is told from the machine's drift.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench import instructions, profile, report, stack, targets
from bench.load import Driver, ensure_wrk
from bench.report import Measured
from bench.singleflight import counted_stampede
from bench.targets import RunConfig

# Candles no earlier request asked for, so the stampede meets an empty cache.
STAMPEDE_PATH = "/api/v1/ohlcv/ETH-USD?granularity=3600&periods=100"


def say(text: str) -> None:
    print(text, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--postgres", action="store_true", help="also run the trade path on PostgreSQL"
    )
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/13", help="a spare DB: flushed"
    )
    parser.add_argument(
        "--unobserved-redis-url",
        default="redis://127.0.0.1:6379/14",
        help="a second spare DB (flushed), for the stack with OBSERVABILITY=false",
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--duration", type=float, default=6.0, help="seconds per high-concurrency run"
    )
    parser.add_argument("--c1-duration", type=float, default=3.0, help="seconds per c=1 run")
    parser.add_argument("--warm", type=float, default=2.0, help="seconds of warm-up per target")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds per target: the table keeps the best, a ratio is the median of rounds "
        "(default 3; 12 with --against)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma list of: bare,real,unobserved,postgres,stampede "
        "(unobserved: the trade path again with OBSERVABILITY=false, needs real)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the trade path instead (on PostgreSQL with --postgres)",
    )
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="TRADES",
        default=0,
        help="instead: count the instructions of TRADES sequential trades in each service "
        "(valgrind's callgrind; immune to the machine's load, minutes per run); with "
        "--against, CHECKOUT's stack counted the same way right after, and the ratio",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="CHECKOUT",
        help="instead: this checkout's trade path against CHECKOUT's (another clone or "
        "`git worktree` of the repository, with `make install` run in it), both stacks "
        "up at once and measured in the same rounds beside the bare chain (with "
        "--instructions: both counted)",
    )
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator")
    parser.add_argument("--results-dir", type=Path, default=report.RESULTS_DIR)
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the real services (repeatable), e.g. SQLITE_SYNCHRONOUS=NORMAL",
    )
    return parser.parse_args(argv)


def real_env(redis_url: str, database_url: str, extra: Sequence[str] = ()) -> dict[str, str]:
    """The stack's environment: simulated market, the bench's Redis DB, a fresh ledger."""
    overrides = dict(item.split("=", 1) for item in extra)
    return {
        "MARKET_DATA_SOURCE": "simulated",
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        # Large enough that neither cash nor the position cap binds during a run.
        "STARTING_CASH": "10000000",
        # A load test sends ~60,000 trades a minute on one key: the per-key order rate
        # protection (default 6,000) would answer most of them 429 and the rps would
        # measure refusals. The protections' cost is still paid on every trade.
        "MAX_ORDERS_PER_MINUTE": "100000000",
        **targets.stack_keys(),
        **overrides,
    }


def real_targets(servers: list[stack.Server], name: str, full: bool) -> list[targets.Target]:
    """The real stack's targets, each with the processes its requests cross."""
    gateway, regime, risk, execution = servers
    trade = replace(targets.trade(execution.url, name), servers=tuple(servers))
    if not full:
        return [trade]
    return [
        trade,
        replace(targets.approve(risk.url), servers=(gateway, regime, risk)),
        replace(targets.regime(regime.url), servers=(gateway, regime)),
        replace(targets.price(gateway.url), servers=(gateway,)),
    ]


def start_real(
    env: dict[str, str],
    logs: Path,
    es: ExitStack,
    what: str = "the real stack",
    repo: Path = stack.REPO,
) -> list[stack.Server]:
    """Start `repo`'s real stack inside `es` and check one trade goes through."""
    say(f"starting {what} ({env['DATABASE_URL'].split(':', 1)[0]} ledger)")
    stack.flush_redis(env["REDIS_URL"])
    es.callback(stack.flush_redis, env["REDIS_URL"])
    servers = stack.real_stack(logs, env, repo=repo)
    es.enter_context(stack.running(servers))
    profile.check_trade(servers[-1].url, say)
    return servers


def measure_stack(
    driver: Driver, cfg: RunConfig, logs: Path, args: argparse.Namespace, only: set[str]
) -> tuple[list[Measured], dict[str, Any], list[str]]:
    """The bare chain and hello-world, and beside them the real stack on SQLite."""
    extra: dict[str, Any] = {}
    failures: list[str] = []
    bare, hello = stack.bare_chain(logs), stack.hello_world(logs)
    with stack.running([*bare, hello]), ExitStack() as es:
        group = [
            replace(targets.bare_chain(bare[-1].url), servers=tuple(bare)),
            replace(targets.hello(hello.url), servers=(hello,)),
        ]
        real: list[stack.Server] = []
        if "real" in only:
            env = real_env(args.redis_url, f"sqlite:///{logs / 'ledger.db'}", args.service_env)
            try:
                real = start_real(env, logs, es)
            except (RuntimeError, TimeoutError) as exc:
                failures.append(f"real stack: {exc}")
        unobserved: list[targets.Target] = []
        if real and "unobserved" in only:
            try:
                unobserved = [start_unobserved(args, logs, es)]
            except (RuntimeError, TimeoutError) as exc:
                failures.append(f"unobserved stack: {exc}")
        if real:
            # Each target beside its reference: trade after bare chain, price after hello,
            # the trade path without metrics and spans right after the trade path.
            trade, *others = real_targets(real, "trade", full=True)
            group = [group[0], trade, *unobserved, group[1], others[-1], *others[:-1]]
        say("measuring")
        measured = targets.measure_rounds(driver, group, cfg, say)
    return measured, extra, failures


def start_unobserved(args: argparse.Namespace, logs: Path, es: ExitStack) -> targets.Target:
    """The real stack again with `OBSERVABILITY=false`: its trade target."""
    folder = logs / "unobserved"
    folder.mkdir()
    env = real_env(
        args.unobserved_redis_url,
        f"sqlite:///{folder / 'ledger.db'}",
        [*args.service_env, "OBSERVABILITY=false"],
    )
    servers = start_real(env, folder, es, "the real stack with OBSERVABILITY=false")
    trade = targets.trade(servers[-1].url, "trade-unobserved")
    label = "POST /api/v1/trade, OBSERVABILITY=false"
    return replace(trade, label=label, servers=tuple(servers))


def measure_against(
    driver: Driver, cfg: RunConfig, logs: Path, args: argparse.Namespace
) -> list[Measured]:
    """The bare chain, this checkout's trade path and `args.against`'s, in the same rounds.

    Both stacks stay up throughout (one idles while the other is measured), each on its
    own Redis database and SQLite ledger, with the same settings and keys (a checkout
    from before the keys ignores them).
    """
    other_logs = logs / "against"
    other_logs.mkdir()
    ours = real_env(args.redis_url, f"sqlite:///{logs / 'ledger.db'}", args.service_env)
    theirs = real_env(
        args.unobserved_redis_url, f"sqlite:///{other_logs / 'ledger.db'}", args.service_env
    )
    bare = stack.bare_chain(logs)
    with stack.running(bare), ExitStack() as es:
        mine = start_real(ours, logs, es, "this checkout's stack")
        other = start_real(theirs, other_logs, es, f"{args.against}'s stack", args.against)
        group = [
            replace(targets.bare_chain(bare[-1].url), servers=tuple(bare)),
            replace(targets.trade(mine[-1].url), servers=tuple(mine)),
            replace(
                targets.trade(other[-1].url, "trade-against"),
                label=f"POST /api/v1/trade ({args.against})",
                servers=tuple(other),
            ),
        ]
        say("measuring")
        return targets.measure_rounds(driver, group, cfg, say)


def run_against(
    driver: Driver, cfg: RunConfig, logs: Path, args: argparse.Namespace, machine: dict[str, Any]
) -> int:
    """`--against`: measure, print both sides and their paired difference, write the JSON."""
    this, other = report.git_commit(), report.git_commit(args.against)
    try:
        measured = measure_against(driver, cfg, logs, args)
    except (RuntimeError, TimeoutError) as exc:
        say(f"FAILED {exc}")
        return 1
    say(report.table(measured, cfg.concurrency))
    say(report.cpu_lines(measured, cfg.concurrency))
    bare, mine, theirs = measured
    pairs = report.against(mine, theirs, bare)
    say(report.against_lines(pairs, f"this ({this})", f"other ({other})"))
    errors = sum(m.errors for m in measured)
    compared = [
        {
            "name": p.name,
            "this": round(p.this, 3),
            "other": round(p.other, 3),
            "differences": [round(d, 3) for d in p.differences],
            "median": round(p.median, 3),
            "stderr": round(p.stderr, 3),
        }
        for p in pairs
    ]
    extra = {
        "config": asdict(cfg),
        "errors": errors,
        "against": {"this": this, "other": other, "path": str(args.against), "pairs": compared},
    }
    doc = report.results_json(measured, [], machine, extra)
    say(f"results: {report.write_results(doc, args.results_dir, suffix='-against')}")
    return 1 if errors else 0


def measure_postgres(
    driver: Driver, cfg: RunConfig, logs: Path, args: argparse.Namespace
) -> list[Measured]:
    """The trade path again, on a fresh PostgreSQL ledger."""
    with (
        stack.postgres_database(args.pg_admin_url, "tradestack_bench") as url,
        ExitStack() as es,
    ):
        real = start_real(real_env(args.redis_url, url, args.service_env), logs, es)
        group = real_targets(real, "trade-postgres", full=False)
        return targets.measure_rounds(driver, group, cfg, say)


def summarize(
    measured: list[Measured], cfg: RunConfig, extra: dict[str, Any]
) -> list[report.Ratio]:
    """Print the table, the ratios and the stampede; return the checks."""
    checks = report.ratios({m.name: m for m in measured})
    sf = extra.get("stampede")
    if sf:
        calls = float(sf["upstream_calls"])
        checks.append(report.Ratio("stampede upstream calls per key", calls, "<=", 1))
    say("")
    say(report.table(measured, cfg.concurrency))
    say("")
    say(report.cpu_lines(measured, cfg.concurrency))
    say("")
    say(report.ratio_lines(checks))
    if sf:
        say(
            f"stampede: {sf['clients']} clients on {sf['path']}: {sf['ok']} answered 2xx "
            f"(statuses {sf['statuses']}); exchange calls per key: "
            f"{sf['exchange_calls_per_key']} (target <= 1); the gateway's own counter: "
            f"{'not exposed' if sf['gateway_counter'] is None else sf['gateway_counter']}"
        )
    return checks


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    only = set(filter(None, args.only.split(","))) or {"bare", "real", "unobserved", "stampede"}
    if args.postgres:
        only.add("postgres")
    rounds = args.rounds or (12 if args.against else 3)
    cfg = RunConfig(args.concurrency, args.duration, args.c1_duration, args.warm, rounds=rounds)
    wrk = None if args.python_load else ensure_wrk(say)
    machine = report.machine_info("wrk" if wrk else "python")
    # wrk needs little CPU: on a small machine one thread leaves the cores to the servers.
    driver = Driver(wrk, threads=1 if machine["nproc"] <= 2 else 2)
    if not wrk:
        say("load generator: Python fallback (bench.pyload); it may limit the fastest targets")
    say(f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}; load: {driver.name}")

    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    if args.instructions:
        counted = [(stack.REPO, "this", args.redis_url)]
        if args.against:
            counted.append((args.against, "against", args.unobserved_redis_url))
        checkouts = []
        for repo, name, redis_url in counted:
            folder = logs / name
            folder.mkdir()
            env = real_env(redis_url, f"sqlite:///{folder / 'ledger.db'}", args.service_env)
            checkouts.append((repo, folder, env))
        return instructions.run(args.instructions, checkouts, say)
    if args.against:
        return run_against(driver, cfg, logs, args, machine)
    if args.profile:
        if not args.postgres:
            env = real_env(args.redis_url, f"sqlite:///{logs / 'ledger.db'}", args.service_env)
            return profile.run(driver, cfg, logs, env, args.results_dir, say)
        with stack.postgres_database(args.pg_admin_url, "tradestack_profile") as url:
            env = real_env(args.redis_url, url, args.service_env)
            return profile.run(driver, cfg, logs, env, args.results_dir, say)

    measured: list[Measured] = []
    extra: dict[str, Any] = {}
    failures: list[str] = []
    if only & {"bare", "real"}:
        measured, extra, failures = measure_stack(driver, cfg, logs, args, only)
    if "stampede" in only:
        try:
            extra["stampede"] = counted_stampede(logs, args.redis_url, STAMPEDE_PATH)
        except (RuntimeError, TimeoutError, OSError) as exc:
            failures.append(f"stampede: {exc}")
    if "postgres" in only:
        try:
            measured += measure_postgres(driver, cfg, logs, args)
        except (RuntimeError, TimeoutError, OSError) as exc:
            failures.append(f"postgres stack: {exc}")

    checks = summarize(measured, cfg, extra)
    for failure in failures:
        say(f"FAILED {failure}")
    sf = extra.get("stampede")
    errors = sum(m.errors for m in measured) + (sf["clients"] - sf["ok"] if sf else 0)
    extra = {**extra, "config": asdict(cfg), "failures": failures, "errors": errors}
    doc = report.results_json(measured, checks, machine, extra)
    path = report.write_results(doc, args.results_dir)
    say(f"results: {path} (and latest.json); logs: {logs}; {time.monotonic() - started:.0f}s")
    if errors:
        say(f"{errors} errors in the runs")
    return 1 if errors or failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
