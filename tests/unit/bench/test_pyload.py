"""The fallback generator's percentile maths."""

from __future__ import annotations

import pytest

from bench.pyload import percentile


def test_nearest_rank_percentiles() -> None:
    """p50 and p99 of 1..100 are the 50th and 99th values; p100 is the maximum."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


def test_percentile_of_small_samples_rounds_up() -> None:
    """With few samples the rank rounds up: p50 of 3 values is the middle one."""
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0], 99) == 3.0
    assert percentile([4.0], 1) == 4.0


def test_percentile_of_nothing_is_zero() -> None:
    """No samples (every request failed) gives 0, not an error."""
    assert percentile([], 50) == 0.0


def test_percentile_outside_range_is_rejected() -> None:
    """A percentile of 0 or above 100 is a caller's mistake."""
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0)
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 101)
