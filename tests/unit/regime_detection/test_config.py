"""The thresholds the service ships, and each setting reaching the rule it configures."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from regime_detection.app import create_app
from regime_detection.classify import Indicators, Thresholds, assess, decide, settle
from regime_detection.config import Settings

from shared.market.models import Regime
from tests.support.servers import free_port
from tests.unit.regime_detection.test_app import CLOSED, FakeSource, _client

# Calm and clearly trending under the shipped thresholds: efficient, low volatility.
CALM = Indicators(
    adx=40.0,
    choppiness=40.0,
    volatility=0.0005,
    volatility_annualized=0.4,
    fast_volatility_annualized=0.4,
    true_range_ratio=1.0,
    efficiency_ratio=0.6,
)


def shipped() -> Thresholds:
    """The thresholds a service started with no environment classifies with."""
    return Thresholds.from_settings(Settings())


@pytest.mark.parametrize(
    ("changes", "regime"),
    [
        ({"efficiency_ratio": 0.35}, "TRENDING"),  # efficiency 0.35 trends ...
        ({"efficiency_ratio": 0.349}, "CHOPPY"),  # ... and just below it does not
        ({"efficiency_ratio": 0.31}, "CHOPPY"),  # (0.3 would trend here)
        ({"true_range_ratio": 2.49}, "TRENDING"),  # 2.5 x the typical range is VOLATILE
        ({"true_range_ratio": 2.5}, "VOLATILE"),
        ({"fast_volatility_annualized": 1.49}, "TRENDING"),  # 150% a year is VOLATILE
        ({"fast_volatility_annualized": 1.5}, "VOLATILE"),
    ],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else v,
)
def test_the_shipped_settings_classify_at_the_documented_thresholds(
    changes: dict[str, float], regime: str
) -> None:
    """Default settings trend from efficiency 0.35, storm at 2.5x the typical range or 150%/year."""
    assert decide(replace(CALM, **changes), shipped()).regime == regime


def test_the_shipped_windows() -> None:
    """The measured windows ship: 10 candles of volatility, 14 of efficiency, 3 to confirm."""
    th = shipped()
    assert (th.fast_periods, th.efficiency_periods, th.confirm, th.replay) == (10, 14, 3, 30)
    assert (th.typical_quantile, th.adx_period, th.chop_period) == (0.5, 14, 14)


def test_the_shipped_confidence_spans() -> None:
    """Shipped spans: confidence 1 at 0.3 of efficiency, or half a threshold, past it."""
    th = shipped()
    quiet = replace(CALM, true_range_ratio=0.5, fast_volatility_annualized=0.1)  # calm: 1
    assert decide(replace(quiet, efficiency_ratio=0.5), th).confidence == pytest.approx(0.5)
    assert decide(replace(quiet, efficiency_ratio=0.05), th).confidence == pytest.approx(1.0)
    assert decide(replace(quiet, efficiency_ratio=0.2), th).confidence == pytest.approx(0.5)
    assert decide(replace(quiet, true_range_ratio=3.125), th).confidence == pytest.approx(0.5)


def test_from_settings_maps_every_setting_to_its_threshold() -> None:
    """Each configured knob lands on its own threshold (no two swapped)."""
    settings = Settings(
        adx_period=11,
        chop_period=12,
        fast_volatility_periods=13,
        typical_range_quantile=0.3,
        true_range_ratio_threshold=2.75,
        volatility_ceiling_annualized=3.5,
        efficiency_periods=16,
        efficiency_threshold=0.45,
        confirm_candles=4,
        replay_candles=40,
        confidence_efficiency_span=0.2,
        confidence_volatility_span=0.25,
    )
    assert Thresholds.from_settings(settings) == Thresholds(
        adx_period=11,
        chop_period=12,
        fast_periods=13,
        typical_quantile=0.3,
        true_range_ratio=2.75,
        volatility_ceiling_annualized=3.5,
        efficiency_periods=16,
        efficiency=0.45,
        confirm=4,
        replay=40,
        efficiency_span=0.2,
        volatility_span=0.25,
    )


def test_configured_thresholds_change_the_call() -> None:
    """Raised thresholds make the same figures CHOPPY, or not VOLATILE, as configured."""
    strict = Thresholds.from_settings(Settings(efficiency_threshold=0.7))
    assert decide(CALM, strict).regime == "CHOPPY"
    stormy = replace(CALM, true_range_ratio=3.0, fast_volatility_annualized=2.0)
    assert decide(stormy, shipped()).regime == "VOLATILE"
    lenient = Settings(true_range_ratio_threshold=3.5, volatility_ceiling_annualized=2.5)
    assert decide(stormy, Thresholds.from_settings(lenient)).regime == "TRENDING"


def test_a_replay_shorter_than_a_confirmation_is_refused() -> None:
    """REPLAY_CANDLES below CONFIRM_CANDLES could never confirm a change: a start-up error."""
    with pytest.raises(ValueError, match="REPLAY_CANDLES"):
        Settings(confirm_candles=5, replay_candles=4)
    assert Settings(confirm_candles=5, replay_candles=5).replay_candles == 5


def test_configured_confirmation_changes_the_answer() -> None:
    """CONFIRM_CANDLES=1 follows the newest candle; the shipped 3 holds through two."""
    trend = [Regime.TRENDING] * 8
    chop = [Regime.CHOPPY] * 2
    calls = trend + chop
    assert settle(calls, shipped().confirm) == "TRENDING"
    assert settle(calls, Thresholds.from_settings(Settings(confirm_candles=1)).confirm) == "CHOPPY"


def test_the_indicator_periods_set_the_fewest_candles() -> None:
    """ADX(n) needs 2n candles: below that the answer is UNKNOWN, with the configured n."""
    th = Thresholds.from_settings(Settings(adx_period=20, chop_period=10))
    prices = np.linspace(100.0, 140.0, 39)
    reading = assess(prices + 1, prices - 1, prices, periods=39, granularity=60, th=th)
    assert (reading.regime, reading.reason) == (
        "UNKNOWN",
        "39 candles in the window; the indicators need at least 40",
    )


@pytest.mark.parametrize(
    ("configured", "applied"),
    [
        ({}, (2.5, 1.5, 0.35, 3)),
        (
            {
                "true_range_ratio_threshold": 2.25,
                "volatility_ceiling_annualized": 1.75,
                "efficiency_threshold": 0.4,
                "confirm_candles": 2,
            },
            (2.25, 1.75, 0.4, 2),
        ),
    ],
    ids=["shipped", "configured"],
)
async def test_the_answer_shows_the_thresholds_applied(
    configured: dict[str, float], applied: tuple[float, float, float, int]
) -> None:
    """The service's answer names the thresholds it classified with: shipped or configured."""
    settings = Settings.model_validate(
        {"market_data_url": CLOSED.format(free_port()), "market_data_source": "simulated"}
        | configured
    )
    app = create_app(settings, market_source=FakeSource())  # type: ignore[arg-type]
    async with _client(app) as client:
        body = (await client.get("/api/v1/regime/BTC-USD")).json()
    names = (
        "true_range_ratio",
        "volatility_ceiling_annualized",
        "efficiency_ratio",
        "confirm_candles",
    )
    assert body["thresholds"] == dict(zip(names, applied, strict=True))


def test_the_openapi_document_states_the_configured_figures() -> None:
    """The OpenAPI text names the configured windows and thresholds, not the shipped numbers."""
    settings = Settings(
        adx_period=20,
        chop_period=12,
        fast_volatility_periods=11,
        true_range_ratio_threshold=3.25,
        volatility_ceiling_annualized=1.75,
        efficiency_periods=16,
        efficiency_threshold=0.45,
        confirm_candles=4,
        default_periods=120,
        baseline_periods=250,
    )
    doc = create_app(settings).openapi()
    description = doc["info"]["description"]
    configured = [
        "last 11 candles",
        "3.25x",
        "175%",
        "over 16 closes is at least 0.45",
        "once 4 candles in a row",
        "ADX(20)",
        "Choppiness(12)",
        "last 120 candles",
        "last 250",
    ]
    assert [figure for figure in configured if figure not in description] == []
    text = json.dumps(doc)
    assert [shipped for shipped in ("(14)", "(10)", "default 100") if shipped in text] == []
