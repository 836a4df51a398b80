"""`make mutate`: mutation testing (mutmut) of the modules where a bug costs money or safety.

mutmut names a mutant after its module's path, so it needs each package at the top of
the folder it runs in; ours sit in hyphenated service folders. Each group therefore runs
in its own work folder under `.mutate/`: a copy of the group's package, the tests and a
pyproject.toml saying what to mutate and which tests exercise it. Packages not mutated
are imported from the checkout as usual. Every run is under `nice -n 19`.

Prints the score per module and the survivors that `mutation/equivalent.txt` does not
explain; exits 1 if a module is under the target or a survivor is unexplained.

    python scripts/mutate.py                 # every group
    python scripts/mutate.py risk shared     # only these groups
    python scripts/mutate.py --sample 20 execution   # a fifth of its mutants, for time
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutate"
EQUIVALENT = ROOT / "mutation" / "equivalent.txt"
TARGET = 0.90
KILLED = {"killed", "timeout", "segfault"}  # a mutant the tests noticed, one way or another
UNTESTED = {"not checked", "check was interrupted by user"}  # a sample's rest, a stopped run


@dataclass(frozen=True)
class Group:
    package: str  # the import name
    folder: str  # where it lives in the checkout
    modules: tuple[str, ...]  # file names inside the package
    tests: tuple[str, ...]  # the tests that exercise those modules


# Each group's mutants run against the tests written for its modules, not the whole suite:
# the app-over-sockets and property-based tests would multiply the run time on a shared
# machine, and what they catch the focused tests must catch too.
GROUPS = {
    "shared": Group(
        "shared",
        "shared",
        ("breaker.py", "retry.py", "var.py", "limits.py", "ttl_cache.py"),
        (
            "tests/unit/shared/test_breaker.py",
            "tests/unit/shared/test_retry.py",
            "tests/unit/shared/test_limits.py",
            "tests/unit/market_data_gateway/test_cache.py",
            "tests/unit/shared/test_client.py",
            "tests/unit/shared/test_var.py",
            "tests/unit/risk_management/test_sizing.py",
            "tests/unit/execution/test_limits.py",
        ),
    ),
    "regime": Group(
        "regime_detection",
        "regime-detection/regime_detection",
        ("classify.py", "indicators.py"),
        (
            "tests/unit/regime_detection/test_classify.py",
            "tests/unit/regime_detection/test_config.py",
            "tests/unit/regime_detection/test_indicators.py",
        ),
    ),
    "risk": Group(
        "risk_management",
        "risk-management/risk_management",
        ("sizing.py", "limits.py", "inputs.py"),
        (
            "tests/unit/risk_management/test_sizing.py",
            "tests/unit/risk_management/test_service.py",
            "tests/unit/risk_management/test_inputs.py",
        ),
    ),
    "broker": Group(
        "execution",
        "execution/execution",
        ("broker.py",),
        ("tests/unit/execution/test_broker.py", "tests/unit/execution/test_trade.py"),
    ),
    "execution": Group(
        "execution",
        "execution/execution",
        ("service.py", "idempotency.py", "ledger.py", "fills.py", "limits.py"),
        # The whole folder: the ledger's group commit, the orders and account reads, the
        # protections and the routes exercise these modules too (mutmut runs only the
        # tests that reach the mutated function).
        ("tests/unit/execution",),
    ),
    "gateway": Group(
        "market_data_gateway",
        "market-data-gateway/market_data_gateway",
        ("cache.py",),
        (
            "tests/unit/market_data_gateway/test_cache.py",
            "tests/unit/market_data_gateway/test_service.py",
        ),
    ),
}
# Left out of every group: one ledger backend is enough to judge the logic; the
# concurrency tests time out against the instrumented (slower) code; tests that start
# service processes run the checkout's code, which the mutants never reach.
DESELECT = "not postgresql and not concurrent and not processes"
# Log calls are not mutated: their wording is not behaviour the money path depends on.
UNMUTATED_LINES = [r"^\s*log\.(debug|info|warning|error|exception)\("]


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"  # TOML literal strings


def prepare(name: str, group: Group) -> Path:
    """The group's work folder: its package copied flat, the tests, the mutmut config."""
    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    # Kept between runs: mutmut then re-tests only what changed since the last one.
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source, target in ((ROOT / group.folder, group.package), (ROOT / "tests", "tests")):
        shutil.copytree(source, work / target, ignore=ignore, dirs_exist_ok=True)
    pytest_section = re.search(
        r"^\[tool\.pytest\.ini_options\]\n(?:(?!^\[).*\n)*",
        (ROOT / "pyproject.toml").read_text(),
        re.MULTILINE,
    )
    assert pytest_section is not None
    selection = [*group.tests, "-k", DESELECT]
    (work / "pyproject.toml").write_text(
        pytest_section.group(0)
        + "\n[tool.mutmut]\n"
        + f"source_paths = {_toml_list([group.package])}\n"
        + f"only_mutate = {_toml_list([f'{group.package}/{m}' for m in group.modules])}\n"
        + f"pytest_add_cli_args_test_selection = {_toml_list(selection)}\n"
        + 'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        + f"do_not_mutate_patterns = {_toml_list(UNMUTATED_LINES)}\n"
    )
    return work


def _mutmut(work: Path, *args: str, log: Path | None = None) -> str:
    """Run mutmut in `work` (niced); its output, or its log file's when given."""
    mutmut = Path(sys.executable).parent / "mutmut"
    env = os.environ | {"TRADESTACK_DATA": str(ROOT.parent / "shared" / "data")}
    command = ["nice", "-n", "19", str(mutmut), *args]
    if log is None:
        return subprocess.run(
            command, cwd=work, env=env, check=True, capture_output=True, text=True
        ).stdout
    with log.open("a") as out:  # mutmut's progress spinner, kept out of the report
        done = subprocess.run(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"mutmut failed in {work}; see {log}")
    return ""


def statuses_in(work: Path) -> dict[str, str]:
    """The status mutmut holds for each mutant of a work folder."""
    statuses = {}
    for line in _mutmut(work, "results", "--all", "true").splitlines():
        mutant, sep, status = line.strip().rpartition(": ")
        if sep:
            statuses[mutant] = status
    return statuses


def sampled(package: str, percent: int, earlier: dict[str, str]) -> list[str]:
    """What mutmut is asked for in a sample run: about `percent`% of a package's mutants,
    those whose number ends in one of the first percent/10 digits (so every function with
    ten or more is sampled). Once a run has listed them, only those not yet killed: mutmut
    re-tests every mutant it is named."""
    digits = tuple(str(digit) for digit in range(percent // 10))
    if not earlier:
        return [f"{package}.*__mutmut_*{digit}" for digit in digits]
    return sorted(m for m, status in earlier.items() if m.endswith(digits) and status not in KILLED)


def run(name: str, group: Group, jobs: int, sample: int) -> dict[str, str]:
    """Run mutmut over one group (or `sample`% of it); the status of each of its mutants."""
    work = prepare(name, group)
    earlier = statuses_in(work) if (work / "mutants").exists() else {}
    log = work / "run.log"
    chosen = sampled(group.package, sample, earlier) if sample < 100 else []
    if sample == 100 or chosen:
        _mutmut(work, "run", "--max-children", str(jobs), *chosen, log=log)
    # mutmut re-tests changed functions by itself, but not old survivors against new tests.
    now = statuses_in(work)
    again = {m for m, status in earlier.items() if status not in KILLED | UNTESTED and m in now}
    again -= set(chosen)
    # mutmut maps tests to functions afresh only for new tests: a function added since the
    # last run reads "no tests" though old tests call it. Map them all again, then re-test.
    no_tests = {m for m, status in now.items() if status == "no tests"}
    if no_tests:
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        again |= no_tests
    if again:
        _mutmut(work, "run", "--max-children", str(jobs), *sorted(again), log=log)
    return statuses_in(work)


def equivalents() -> set[str]:
    """Mutants explained as equivalent: the first word of each non-comment line."""
    if not EQUIVALENT.exists():
        return set()
    lines = EQUIVALENT.read_text().splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def module_of(mutant: str) -> str:
    """`risk_management.sizing.x_size_trade__mutmut_3` -> `risk_management/sizing.py`."""
    path = mutant.partition("__mutmut_")[0].rsplit(".", 1)[0]
    return path.replace(".", "/") + ".py"


def report(statuses: dict[str, str], explained: set[str]) -> bool:
    """Print the score per module and the unexplained survivors; True if all pass.

    Mutants not tested (outside a sample, or after a stopped run) count in no score; a
    module with any is reported as not passing, since its score is only an estimate."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors = []
    for mutant, status in sorted(statuses.items()):
        counts[module_of(mutant)][status] += 1
        if status not in KILLED | UNTESTED and mutant not in explained:
            survivors.append(f"{mutant}: {status}")
    ok = True
    print("\n| module | mutants | not tested | killed | equivalent | survived | score |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for module, count in sorted(counts.items()):
        total = sum(count.values())
        untested = sum(n for status, n in count.items() if status in UNTESTED)
        killed = sum(n for status, n in count.items() if status in KILLED)
        equivalent = sum(
            1
            for m, s in statuses.items()
            if module_of(m) == module and s not in KILLED | UNTESTED and m in explained
        )
        survived = total - untested - killed - equivalent
        tested = total - untested - equivalent
        score = killed / tested if tested else 1.0
        ok &= score >= TARGET and survived == 0 and untested == 0
        print(
            f"| {module} | {total} | {untested} | {killed} | {equivalent} | {survived} "
            f"| {score:.1%} |"
        )
    if survivors:
        print("\nSurvivors (kill them with a test, or explain them in mutation/equivalent.txt):")
        print("\n".join(f"  {line}" for line in survivors))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", choices=list(GROUPS), default=list(GROUPS))
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument(
        "--sample",
        type=int,
        default=100,
        choices=range(10, 101, 10),
        metavar="PERCENT",
        help="test about this share of each group's mutants (10, 20, ... 100)",
    )
    parser.add_argument(
        "--report", action="store_true", help="only report the last run's results in .mutate/"
    )
    args = parser.parse_args()
    statuses: dict[str, str] = {}
    started = time.monotonic()
    for name in args.groups:
        began = time.monotonic()
        if args.report:
            work = WORK / name
            statuses |= statuses_in(work) if (work / "mutants").exists() else {}
            continue
        statuses |= run(name, GROUPS[name], args.jobs, args.sample)
        print(f"{name}: {time.monotonic() - began:.0f} s", flush=True)
    ok = report(statuses, equivalents())
    tested = sum(status not in UNTESTED for status in statuses.values())
    took = time.monotonic() - started
    print(f"\nRun time: {took:.0f} s; {tested} of {len(statuses)} mutants tested")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
