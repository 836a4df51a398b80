"""The VaR model against hand computations."""

from __future__ import annotations

import math

import pytest

from shared.var import (
    candle_volatility,
    daily_volatility,
    max_buy_under_var,
    portfolio_var,
    position_var,
    z_score,
)

Z95 = 1.6448536269514722  # Phi^-1(0.95), from tables


def test_z_score_is_the_normal_quantile() -> None:
    """z(0.95) is the one-sided 95% standard normal quantile."""
    assert z_score(0.95) == pytest.approx(Z95, abs=1e-12)
    assert z_score(0.99) == pytest.approx(2.3263478740408408, abs=1e-12)


def test_daily_volatility_scales_by_the_square_root_of_time() -> None:
    """A per-minute volatility times sqrt(1440) is the daily volatility."""
    assert daily_volatility(0.001, 60) == pytest.approx(0.001 * math.sqrt(1440), abs=1e-15)
    assert daily_volatility(0.02, 86_400) == 0.02
    assert daily_volatility(0.01, 3600) == pytest.approx(0.01 * math.sqrt(24), abs=1e-15)


def test_portfolio_var_matches_a_hand_computation() -> None:
    """Two positions' VaR is the sum z*sigma*value, to 1e-9."""
    values = {"BTC-USD": 30_000.0, "ETH-USD": 20_000.0}
    sigmas = {"BTC-USD": 0.03, "ETH-USD": 0.045}
    # 1.6448536269514722 * (0.03*30000 + 0.045*20000) = 1.6448536269514722 * 1800
    expected = 2960.7365285126500
    assert portfolio_var(values, sigmas, z_score(0.95)) == pytest.approx(expected, abs=1e-9)
    assert position_var(30_000.0, 0.03, Z95) == pytest.approx(Z95 * 900.0, abs=1e-9)


def test_max_buy_under_var_solves_the_limit_exactly() -> None:
    """The closed-form bound lands the post-trade VaR on the limit, to 1e-9."""
    z = z_score(0.95)
    others = position_var(40_000.0, 0.05, z)
    x = max_buy_under_var(
        limit_usd=5_000.0, var_of_others=others, held_value=2_000.0, sigma_daily=0.1, z=z
    )
    # (5000 - z*0.05*40000 - z*0.1*2000) / (z*0.1) by hand: 5000/(0.1z) - 20000 - 2000
    assert x == pytest.approx(5_000.0 / (0.1 * Z95) - 22_000.0, abs=1e-9)
    assert position_var(2_000.0 + x, 0.1, z) + others == pytest.approx(5_000.0, abs=1e-9)


def test_max_buy_under_var_edges() -> None:
    """Zero volatility leaves the limit unbounded; an over-limit portfolio may buy nothing."""
    z = z_score(0.95)
    free = max_buy_under_var(
        limit_usd=100.0, var_of_others=0.0, held_value=5.0, sigma_daily=0.0, z=z
    )
    assert free == math.inf
    over = max_buy_under_var(
        limit_usd=100.0, var_of_others=500.0, held_value=0.0, sigma_daily=0.02, z=z
    )
    assert over == 0.0


def test_candle_volatility_is_the_sample_std_of_log_returns() -> None:
    """Closes 100, 110, 99, 108.9 give the sample std of their three log returns."""
    closes = [100.0, 110.0, 99.0, 108.9]
    returns = [math.log(1.1), math.log(0.9), math.log(1.1)]
    mean = sum(returns) / 3
    expected = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert candle_volatility(closes) == pytest.approx(expected, abs=1e-12)


def test_candle_volatility_needs_two_returns() -> None:
    """Fewer than two returns give no estimate rather than a made-up zero."""
    assert candle_volatility([]) is None
    assert candle_volatility([100.0, 101.0]) is None
    assert candle_volatility([100.0, 100.0, 100.0]) == 0.0


def test_no_buy_at_all_once_over_the_limit() -> None:
    """Over the limit, even an asset with no volatility may not be bought."""
    z = z_score(0.95)
    bound = max_buy_under_var(
        limit_usd=100.0, var_of_others=500.0, held_value=0.0, sigma_daily=0.0, z=z
    )
    assert bound == 0.0


def test_candle_volatility_skips_returns_to_or_from_a_zero_close() -> None:
    """A zero close (no trade) is skipped on both sides; sub-dollar prices count as any."""
    closes = [0.15, 0.16, 0.0, 0.155, 0.158, 0.152]
    kept = [math.log(0.16 / 0.15), math.log(0.158 / 0.155), math.log(0.152 / 0.158)]
    mean = sum(kept) / 3
    expected = math.sqrt(sum((r - mean) ** 2 for r in kept) / 2)
    assert candle_volatility(closes) == pytest.approx(expected, rel=1e-12)


def test_max_buy_under_var_at_and_just_inside_the_limit() -> None:
    """Exactly at the limit a zero-volatility asset is unbounded; 0.5 USD of room buys 0.5/zs."""
    z = z_score(0.95)
    at = max_buy_under_var(limit_usd=10, var_of_others=10, held_value=0, sigma_daily=0, z=z)
    assert at == math.inf
    inside = max_buy_under_var(
        limit_usd=10.5, var_of_others=10, held_value=0, sigma_daily=0.03, z=z
    )
    assert inside == pytest.approx(0.5 / (z * 0.03), rel=1e-12)
