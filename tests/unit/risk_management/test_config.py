"""Risk's settings: the shipped limits, each setting reaching its limit, and the start-up checks."""

from __future__ import annotations

from typing import Any

import pytest
from risk_management.config import Settings
from risk_management.limits import Holding, Limits, Portfolio, TradeRequest
from risk_management.sizing import Constraint, size_trade

from shared.market.models import Regime


def test_the_shipped_limits() -> None:
    """A service started with no environment sizes with the README's defaults."""
    assert Settings().limits() == Limits(
        max_position_share=0.25,
        regime_multipliers={
            Regime.TRENDING: 1.0,
            Regime.CHOPPY: 0.5,
            Regime.VOLATILE: 0.25,
            Regime.UNKNOWN: 0.1,
        },
        var_limit_share=0.05,
        var_confidence=0.95,
        buy_fee_rate=0.006,
        min_order_usd=10.0,
        max_order_usd=100_000.0,
    )


def test_limits_maps_every_setting_to_its_limit() -> None:
    """Each configured knob lands on its own limit (no two swapped)."""
    settings = Settings(
        max_position_share=0.3,
        regime_multiplier_trending=0.9,
        regime_multiplier_choppy=0.6,
        regime_multiplier_volatile=0.4,
        regime_multiplier_unknown=0.2,
        var_limit_share=0.07,
        var_confidence=0.99,
        buy_fee_rate=0.004,
        min_order_usd=5.0,
        max_order_usd=50_000.0,
    )
    assert settings.limits() == Limits(
        max_position_share=0.3,
        regime_multipliers={
            Regime.TRENDING: 0.9,
            Regime.CHOPPY: 0.6,
            Regime.VOLATILE: 0.4,
            Regime.UNKNOWN: 0.2,
        },
        var_limit_share=0.07,
        var_confidence=0.99,
        buy_fee_rate=0.004,
        min_order_usd=5.0,
        max_order_usd=50_000.0,
    )


def test_a_multiplier_from_the_environment_sizes_the_trade(monkeypatch: pytest.MonkeyPatch) -> None:
    """REGIME_MULTIPLIER_CHOPPY=0.8 lets a CHOPPY buy of 1000 through at 800 (500 shipped)."""
    book = Portfolio(cash=100_000, holdings={"BTC-USD": Holding(0.0, 50_000.0, 0.03)})
    trade = TradeRequest(symbol="BTC-USD", side="buy", amount=1_000)
    shipped = size_trade(trade, book, Regime.CHOPPY, Settings().limits())
    monkeypatch.setenv("REGIME_MULTIPLIER_CHOPPY", "0.8")
    configured = size_trade(trade, book, Regime.CHOPPY, Settings().limits())
    assert (shipped.max_amount, configured.max_amount) == (500, 800)
    assert configured.constraint is Constraint.REGIME


@pytest.mark.parametrize("other", ["trending", "choppy", "volatile"])
def test_unknown_above_another_multiplier_is_refused(other: str) -> None:
    """UNKNOWN must be the most conservative: above any other multiplier is a start-up error."""
    lowered: dict[str, Any] = {f"regime_multiplier_{other}": 0.05}
    with pytest.raises(ValueError, match="REGIME_MULTIPLIER_UNKNOWN"):
        Settings(**lowered)
    equal: dict[str, Any] = {f"regime_multiplier_{other}": 0.1}
    assert Settings(**equal).limits().multiplier(Regime.UNKNOWN) == 0.1
