"""The simulated market's candles: pure functions of (seed, symbol, granularity, time).

Candle index `k` is the candle opening at `k * granularity`. The index axis is cut into
blocks of `BLOCK` candles; each block is generated from its own hash-seeded generator
and holds three stretches, one of each regime in a hashed order, of hashed lengths
(at least `MIN_STRETCH`). So any `2 * BLOCK` consecutive candles hold all three
regimes, and no candle depends on anything but its block: no state, no walk from the
process start, the same answer in every replica.

The price stays continuous because every block starts at a level that is itself a pure
function of the block index (alternately above and below the symbol's base price) and
ends exactly where the next block starts:

- CHOPPY: a noisy oscillation around the level it starts at (mean-reverting, no drift);
- VOLATILE: several times the symbol's volatility, as noise around a random walk pinned
  at both ends (a Brownian bridge): large swings, no drift, and a level that stays near
  the symbol's realistic range;
- TRENDING: steady drift with small noise, covering whatever distance is left to the
  next block's level (roughly 0.25 to 1 standard deviation of a candle per candle).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from shared.market.models import Regime

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int8]

BLOCK = 720
MIN_STRETCH = 120
REGIMES = (Regime.TRENDING, Regime.CHOPPY, Regime.VOLATILE)  # by code
TRENDING, CHOPPY, VOLATILE = 0, 1, 2
SECONDS_PER_YEAR = 365 * 24 * 3600

VOLATILE_MULTIPLIER = 4.0  # a volatile stretch's step deviation, in the symbol's sigma
TREND_NOISE = 0.5  # a trending stretch's noise, in sigma
# The block levels swing +-LEVEL_STEPS sigma around the base, capped in log terms so daily
# candles keep prices realistic; the cap damps sigma too, keeping the regimes apart.
LEVEL_STEPS = 60.0
MAX_LEVEL_SWING = 0.1


@dataclass(frozen=True, slots=True)
class Block:
    """One block of candles: OHLCV (prices, not logs) and the regime code of each."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    regime: IntArray


def step_sigmas(annual_vol: float, granularity: int) -> tuple[float, float]:
    """A candle's log-return deviation: damped for the level path, and the true figure.

    The calm regimes and the block levels use the damped one, so long candles keep the
    price realistic; volatile stretches keep the true one (as noise around a level, not
    a walk), so they are as volatile per year at every granularity.
    """
    true = float(annual_vol * np.sqrt(granularity / SECONDS_PER_YEAR))
    return min(true, MAX_LEVEL_SWING / LEVEL_STEPS), true


def _level(key: tuple[int, ...], sigma: float, block: int) -> float:
    """The log level (relative to the base) at which `block` opens."""
    u = np.random.default_rng((*key, block & 0xFFFFFFFF, 1)).uniform(0.8, 1.2)
    side = 1.0 if block % 2 else -1.0
    return side * LEVEL_STEPS * sigma * float(u)


def _bridge(steps: FloatArray) -> FloatArray:
    """Cumulative sum of `steps` with the total removed linearly: ends where it starts."""
    path = np.cumsum(steps)
    ramp: FloatArray = path[-1] * np.arange(1, steps.size + 1) / steps.size
    return path - ramp


@lru_cache(maxsize=512)
def block(key: tuple[int, ...], sigmas: tuple[float, float], log_base: float, index: int) -> Block:
    """Generate block `index` for `key` = (seed, symbol hash, granularity)."""
    sigma, true_sigma = sigmas
    rng = np.random.default_rng((*key, index & 0xFFFFFFFF, 0))
    order = rng.permutation(3)
    spare = BLOCK - 3 * MIN_STRETCH
    cuts = np.sort(rng.integers(0, spare + 1, size=2))
    lengths = np.diff(np.concatenate(([0], cuts, [spare]))) + MIN_STRETCH
    noise = rng.standard_normal((5, BLOCK))

    start = _level(key, sigma, index)
    end = _level(key, sigma, index + 1)
    rel = np.empty(BLOCK)  # log close minus the block's opening level
    regime = np.empty(BLOCK, dtype=np.int8)
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    spans = {int(r): (int(bounds[i]), int(bounds[i + 1])) for i, r in enumerate(order)}
    # Choppy: an oscillation of 10-30 candles plus noise around where it starts.
    a, b = spans[CHOPPY]
    period = rng.uniform(10.0, 30.0)
    phase = 2 * np.pi * np.arange(1, b - a + 1) / period
    chop = 1.5 * sigma * np.sin(phase) + 0.8 * sigma * noise[0, a:b]
    # Volatile: noise around a pinned random walk, so candles move hard both ways while
    # the level stays within reach of the next block's.
    a, b = spans[VOLATILE]
    jolts = VOLATILE_MULTIPLIER * true_sigma / np.sqrt(2.0) * noise[1, a:b]
    vol = _bridge(2.0 * sigma * noise[0, a:b]) + jolts
    vol[-1] = 0.0
    a, b = spans[TRENDING]
    trend_noise = _bridge(TREND_NOISE * sigma * noise[0, a:b])
    drift = (end - start - chop[-1]) * np.arange(1, b - a + 1) / (b - a)
    paths = {CHOPPY: chop, VOLATILE: vol, TRENDING: trend_noise + drift}

    level = 0.0
    for r in order:
        a, b = spans[int(r)]
        rel[a:b] = level + paths[int(r)]
        regime[a:b] = r
        level = float(rel[b - 1])
    log_close = log_base + start + rel
    log_close[-1] = log_base + end  # exact, so the next block opens at this close
    log_open = np.concatenate(([log_base + start], log_close[:-1]))

    wick_scale = np.where(regime == VOLATILE, VOLATILE_MULTIPLIER * true_sigma, sigma) * 0.5
    high = np.exp(np.maximum(log_open, log_close) + np.abs(noise[3]) * wick_scale)
    low = np.exp(np.minimum(log_open, log_close) - np.abs(noise[2]) * wick_scale)
    volume = np.exp(noise[4] * 0.4) * np.where(regime == VOLATILE, 2.5, 1.0)
    arrays = (np.exp(log_open), high, low, np.exp(log_close), volume, regime)
    for array in arrays:
        array.flags.writeable = False  # cached and shared: nobody may edit them
    return Block(*arrays)
