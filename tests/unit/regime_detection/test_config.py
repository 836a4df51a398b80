"""The thresholds the service ships, and each setting reaching the rule it configures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from regime_detection.app import create_app
from regime_detection.classify import Indicators, Thresholds, assess, decide
from regime_detection.config import Settings

from tests.support.servers import free_port
from tests.unit.regime_detection.test_app import CLOSED, FakeSource, _client

# Calm and clearly trending under the shipped thresholds: ADX 40, CHOP 40, low volatility.
CALM = Indicators(
    adx=40.0,
    choppiness=40.0,
    volatility=0.0005,
    volatility_annualized=0.4,
    baseline_volatility=0.0005,
    volatility_ratio=1.0,
)


def shipped() -> Thresholds:
    """The thresholds a service started with no environment classifies with."""
    return Thresholds.from_settings(Settings())


@pytest.mark.parametrize(
    ("changes", "regime"),
    [
        ({"adx": 25.0}, "TRENDING"),  # ADX 25 trends ...
        ({"adx": 24.9}, "CHOPPY"),  # ... and just below it does not (20 would trend here)
        ({"adx": 21.0}, "CHOPPY"),
        ({"choppiness": 61.7}, "TRENDING"),  # CHOP below 61.8 lets it trend ...
        ({"choppiness": 61.8}, "CHOPPY"),  # ... at 61.8 it does not (70 would trend here)
        ({"choppiness": 65.0}, "CHOPPY"),
        ({"volatility_ratio": 1.49}, "TRENDING"),  # 1.5 x the baseline is VOLATILE
        ({"volatility_ratio": 1.5}, "VOLATILE"),
        ({"volatility_annualized": 1.49}, "TRENDING"),  # 150% a year is VOLATILE
        ({"volatility_annualized": 1.5}, "VOLATILE"),
    ],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else v,
)
def test_the_shipped_settings_classify_at_the_documented_thresholds(
    changes: dict[str, float], regime: str
) -> None:
    """Default settings trend from ADX 25, stop at CHOP 61.8, storm at 1.5x or 150%/year."""
    assert decide(replace(CALM, **changes), shipped()).regime == regime


def test_the_shipped_confidence_spans() -> None:
    """Shipped spans: confidence 1 at 15 ADX or CHOP points, or half a threshold, past it."""
    th = shipped()
    quiet = replace(CALM, volatility_ratio=0.5, volatility_annualized=0.1)  # calm counts 1
    assert decide(replace(quiet, adx=32.5), th).confidence == pytest.approx(0.5)
    assert decide(replace(quiet, adx=10.0, choppiness=50.0), th).confidence == 1.0
    assert decide(replace(quiet, choppiness=54.3), th).confidence == pytest.approx(0.5)
    assert decide(replace(quiet, volatility_ratio=1.875), th).confidence == pytest.approx(0.5)


def test_from_settings_maps_every_setting_to_its_threshold() -> None:
    """Each configured knob lands on its own threshold (no two swapped)."""
    settings = Settings(
        adx_period=11,
        chop_period=12,
        adx_trend_threshold=31.0,
        chop_high_threshold=52.0,
        volatility_ratio_threshold=2.5,
        volatility_ceiling_annualized=3.5,
        confidence_adx_span=7.0,
        confidence_chop_span=9.0,
        confidence_volatility_span=0.25,
    )
    assert Thresholds.from_settings(settings) == Thresholds(
        adx_period=11,
        chop_period=12,
        adx_trend=31.0,
        chop_high=52.0,
        volatility_ratio=2.5,
        volatility_ceiling_annualized=3.5,
        adx_span=7.0,
        chop_span=9.0,
        volatility_span=0.25,
    )


def test_configured_thresholds_change_the_call() -> None:
    """Raised thresholds make the same indicators CHOPPY, or not VOLATILE, as configured."""
    strict = Thresholds.from_settings(Settings(adx_trend_threshold=45.0))
    assert decide(CALM, strict).regime == "CHOPPY"
    tight = Thresholds.from_settings(Settings(chop_high_threshold=35.0))
    assert decide(CALM, tight).regime == "CHOPPY"
    stormy = replace(CALM, volatility_ratio=2.0, volatility_annualized=2.0)
    assert decide(stormy, shipped()).regime == "VOLATILE"
    lenient = Settings(volatility_ratio_threshold=2.5, volatility_ceiling_annualized=2.5)
    assert decide(stormy, Thresholds.from_settings(lenient)).regime == "TRENDING"


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
        ({}, (25.0, 61.8, 1.5, 1.5)),
        (
            {
                "adx_trend_threshold": 33.0,
                "chop_high_threshold": 55.0,
                "volatility_ratio_threshold": 2.25,
                "volatility_ceiling_annualized": 1.75,
            },
            (33.0, 55.0, 2.25, 1.75),
        ),
    ],
    ids=["shipped", "configured"],
)
async def test_the_answer_shows_the_thresholds_applied(
    configured: dict[str, float], applied: tuple[float, float, float, float]
) -> None:
    """The service's answer names the thresholds it classified with: shipped or configured."""
    settings = Settings.model_validate(
        {"market_data_url": CLOSED.format(free_port()), "market_data_source": "simulated"}
        | configured
    )
    app = create_app(settings, market_source=FakeSource())  # type: ignore[arg-type]
    async with _client(app) as client:
        body = (await client.get("/api/v1/regime/BTC-USD")).json()
    names = ("adx_trend", "chop_high", "volatility_ratio", "volatility_ceiling_annualized")
    assert body["thresholds"] == dict(zip(names, applied, strict=True))
