"""`--instructions`: the settings a stack counted under valgrind runs with."""

from __future__ import annotations

import pytest
from market_data_gateway.config import Settings

from bench.instructions import SLOW


def test_valgrind_runs_stretch_the_gateways_cache_lifetimes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under valgrind a trade takes tenths of a second: the price and incomplete-candle
    lifetimes are stretched at least a hundredfold, so a counted trade finds the caches
    as a full-speed trade does (a renamed setting would leave them at their defaults)."""
    for name, value in SLOW.items():
        monkeypatch.setenv(name, value)
    stretched, defaults = Settings(), Settings.model_fields
    for field in ("price_ttl_seconds", "ohlcv_incomplete_ttl_seconds"):
        default = defaults[field].default
        assert getattr(stretched, field) >= 100 * default, field
