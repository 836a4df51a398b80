"""The report: best round, ratios against the targets, the table and the JSON files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench.load import LoadResult
from bench.report import (
    Measured,
    Ratio,
    against,
    against_lines,
    best_of,
    cpu_lines,
    ratios,
    results_json,
    table,
    write_results,
)


def run(rps: float, p50: float, errors: int = 0) -> LoadResult:
    return LoadResult(int(rps * 10), 10.0, p50, p50 * 3, errors, 0)


def target(name: str, rps: float, p50: float, errors: int = 0) -> Measured:
    return Measured(name, name, c1=run(100, p50), cn=run(rps, p50 * 10, errors))


def test_best_of_keeps_the_fastest_runs_and_every_error() -> None:
    """The best round's rps and c=1 p50 are kept; errors of discarded rounds still count."""
    slow = Measured("t", "t", c1=run(100, 1.0), cn=run(500, 9.0, errors=2))
    fast = Measured("t", "t", c1=run(100, 2.0), cn=run(800, 9.0))
    best = best_of([slow, fast])
    assert best.cn.rps == pytest.approx(800)
    assert best.c1.p50_ms == 1.0
    assert best.errors == 2
    assert best.rounds == 2


def test_best_of_nothing_is_an_error() -> None:
    """Asking for the best of no rounds fails."""
    with pytest.raises(ValueError, match="no rounds"):
        best_of([])


def test_ratios_check_the_issue_targets() -> None:
    """trade/bare rps >= 0.75, trade/bare p50 <= 1.5 and price/hello rps >= 0.5."""
    by_name = {
        "trade": target("trade", 700, 3.0),
        "bare-chain": target("bare-chain", 1000, 1.5),
        "price": target("price", 4000, 0.2),
        "hello-world": target("hello-world", 10000, 0.1),
    }
    checks = {r.name: r for r in ratios(by_name)}
    rps = checks["trade/bare-chain rps@c32"]
    assert rps.value == pytest.approx(0.7)
    assert not rps.passed
    p50 = checks["trade/bare-chain p50@c1"]
    assert p50.value == pytest.approx(2.0)
    assert not p50.passed
    price = checks["price(cached)/hello-world rps@c32"]
    assert price.value == pytest.approx(0.4)
    assert not price.passed


def test_ratios_pass_at_the_limits_and_skip_missing_targets() -> None:
    """A ratio exactly at its limit passes; a target not measured gives no ratio."""
    by_name = {"trade": target("trade", 750, 1.5), "bare-chain": target("bare-chain", 1000, 1.0)}
    checks = ratios(by_name)
    assert [r.passed for r in checks] == [True, True]
    assert all("price" not in r.name for r in checks)


def test_ratio_with_a_zero_denominator_fails() -> None:
    """A reference that served nothing cannot make a target pass."""
    assert not Ratio("x", 0.0, ">=", 0.5).passed


def test_table_has_a_row_per_target_and_aligned_columns() -> None:
    """The Markdown table has the header, a rule and one row per target, all one width."""
    text = table([target("trade", 812.4, 2.5, errors=1), target("hello-world", 9000, 0.1)], 32)
    lines = text.splitlines()
    assert lines[0].startswith("| target")
    assert "rps@c32" in lines[0]
    assert len({len(line) for line in lines}) == 1
    assert "| 812 " in lines[2]
    assert lines[2].rstrip(" |").endswith("1")


def test_results_are_written_timestamped_and_as_latest(tmp_path: Path) -> None:
    """The JSON goes to a timestamped file and to latest.json, with targets and ratios."""
    measured = [target("trade", 750, 1.5), target("bare-chain", 1000, 1.0)]
    doc = results_json(measured, ratios({m.name: m for m in measured}), {"nproc": 2}, {"x": 1})
    path = write_results(doc, tmp_path)
    assert path.name.startswith("bench-")
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert latest == json.loads(path.read_text())
    assert latest["machine"] == {"nproc": 2}
    assert latest["targets"][0]["cn"]["rps"] == 750.0
    assert latest["ratios"][0]["pass"] is True
    assert latest["x"] == 1


def test_cpu_lines_total_each_targets_processes() -> None:
    """Each target with CPU samples gets its total and the per-process split."""
    cpu = {"gateway": 0.25, "execution": 1.5}
    trade = Measured(
        "trade", "t", c1=run(1, 1.0), cn=replace(run(1, 1.0), extra={"cpu_ms_per_request": cpu})
    )
    text = cpu_lines([trade, target("hello-world", 1, 1.0)], 32)
    assert text.splitlines()[0].startswith("CPU ms per request at c32")
    assert "trade" in text
    assert "1.75 ms  (gateway 0.25, execution 1.50)" in text
    assert "hello-world" not in text


def rounds_of(name: str, *runs: tuple[float, float]) -> Measured:
    """A target measured in rounds of (rps, p50 at c=1), as `best_of` keeps them."""
    return best_of([target(name, rps, p50) for rps, p50 in runs])


def test_ratios_pair_each_round_with_its_reference() -> None:
    """A ratio is the median of per-round ratios, not the ratio of two best rounds: a fast
    moment of the reference is not held against a slow moment of the target."""
    by_name = {
        # The machine was fast for the reference's run of round 1 only.
        "bare-chain": rounds_of("bare-chain", (1000, 1.0), (600, 2.0), (620, 2.0)),
        "trade": rounds_of("trade", (700, 1.2), (510, 2.6), (560, 2.2)),
    }
    checks = {r.name: r for r in ratios(by_name)}
    rps = checks["trade/bare-chain rps@c32"]
    assert rps.rounds == pytest.approx((0.7, 0.85, 560 / 620))
    assert rps.value == pytest.approx(0.85)
    assert rps.passed  # best over best: 700 / 1000 = 0.7
    p50 = checks["trade/bare-chain p50@c1"]
    assert p50.value == pytest.approx(1.2)
    assert p50.rounds == pytest.approx((1.2, 1.3, 1.1))


def test_ratios_without_matching_rounds_use_the_kept_values() -> None:
    """Unequal round counts cannot be paired: the kept (best) values are compared."""
    by_name = {
        "bare-chain": rounds_of("bare-chain", (1000, 1.0), (600, 2.0)),
        "trade": rounds_of("trade", (700, 1.6)),
    }
    checks = {r.name: r for r in ratios(by_name)}
    assert checks["trade/bare-chain rps@c32"].value == pytest.approx(0.7)
    assert checks["trade/bare-chain rps@c32"].rounds == ()
    assert checks["trade/bare-chain p50@c1"].value == pytest.approx(1.6)


def test_targets_of_different_sessions_are_not_paired() -> None:
    """Rounds measured at different times (another `measure_rounds`) are not paired."""
    bare = replace(rounds_of("bare-chain", (1000, 1.0), (600, 2.0)), session=1)
    trade = replace(rounds_of("trade-postgres", (300, 4.0), (500, 3.0)), session=2)
    checks = {r.name: r for r in ratios({"bare-chain": bare, "trade-postgres": trade})}
    assert checks["trade-postgres/bare-chain rps@c32"].value == pytest.approx(0.5)
    assert checks["trade-postgres/bare-chain rps@c32"].rounds == ()


def rounds(name: str, per_round: list[tuple[float, float]]) -> Measured:
    """A target measured round by round: (rps at c=32, p50 at c=1) per round."""
    return replace(target(name, *per_round[0]), per_round=tuple(per_round), rounds=len(per_round))


def test_against_differences_each_rounds_ratios_to_the_same_bare_chain() -> None:
    """Each round's trade/bare ratios of the two checkouts are differenced in that round:
    a round where the machine was slow for everyone moves neither difference."""
    bare = rounds("bare-chain", [(1000, 1.0), (500, 2.0), (1000, 1.0)])  # round 2 is slow
    this = rounds("trade", [(600, 1.5), (300, 3.0), (620, 1.6)])
    other = rounds("trade-against", [(700, 1.4), (350, 2.8), (700, 1.4)])
    rps, p50 = against(this, other, bare)
    assert (rps.this, rps.other) == pytest.approx((0.6, 0.7))
    assert rps.differences == pytest.approx((-0.1, -0.1, -0.08))
    assert rps.median == pytest.approx(-0.1)
    assert p50.differences == pytest.approx((0.1, 0.1, 0.2))
    assert p50.median == pytest.approx(0.1)
    # mean 0.1333, sample stdev 0.0577, over sqrt(3) rounds
    assert p50.stderr == pytest.approx(0.0577 / 3**0.5, abs=1e-4)
    text = against_lines([rps, p50], "this (abc)", "other (def)")
    assert "+0.100; +0.133 ± 0.033 over 3 rounds" in text
    assert "this (abc)" in text.splitlines()[0]


def test_against_needs_the_same_rounds_on_every_side() -> None:
    """Targets from different sessions cannot be paired round by round."""
    bare = rounds("bare-chain", [(1000, 1.0), (1000, 1.0)])
    with pytest.raises(ValueError, match="same rounds"):
        against(rounds("trade", [(600, 1.5)]), rounds("trade-against", [(600, 1.5)]), bare)
