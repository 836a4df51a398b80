"""Finding and totalling the gateway's upstream call counter in its /health document."""

from __future__ import annotations

from bench.singleflight import find_counter, total_calls


def test_counter_is_found_nested_in_health() -> None:
    """A counter under a dependency's detail is found."""
    doc = {"status": "healthy", "dependencies": {"source": {"detail": {"upstream_calls": 4}}}}
    assert find_counter(doc) == 4


def test_missing_counter_is_none() -> None:
    """A /health without any counter gives None, so the report can say it is not exposed."""
    assert find_counter({"status": "healthy", "dependencies": {"redis": {"status": "ok"}}}) is None


def test_totals_of_numbers_and_per_key_maps() -> None:
    """A plain count is itself; a map per key or kind is summed; other shapes are unknown."""
    assert total_calls(3) == 3
    assert total_calls({"candles": 2, "ticker": {"BTC-USD": 1}}) == 3
    assert total_calls("many") is None
    assert total_calls(True) is None
