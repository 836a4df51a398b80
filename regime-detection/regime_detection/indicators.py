"""The indicators, vectorised in numpy: Wilder's ADX, the Choppiness Index, volatility,
and the short-horizon figures the rule decides on (mean true range, rolling volatility,
Kaufman's efficiency ratio).

ADX follows TA-Lib's `TA_ADX` step for step, so the two agree to rounding: the first
smoothed sums of true range and directional movement cover the first n-1 bars, the
first DX at bar n, the first ADX (the mean of n DX values) at bar 2n-1; a bar whose
smoothed true range or DI sum is zero contributes no DX and leaves ADX unchanged. (The
TA-Lib C library 0.8 in the lock tests for zero exactly, which the parity tests pin
down on prices as small as 1e-12; TA-Lib 0.4 treated |x| < 1e-8 as zero.)

Wilder's smoothing `s[i] = s[i-1] * (1 - 1/n) + x[i]` is a linear recurrence, evaluated
in chunks in closed form (`smooth`); every term it sums is non-negative, so the closed
form loses no precision to cancellation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

FloatArray = npt.NDArray[np.float64]

_CHUNK = 256  # decay**-256 stays far from overflow for any period >= 2


def smooth(x: FloatArray, decay: float, start: float) -> FloatArray:
    """`s[i] = s[i-1] * decay + x[i]` with `s[-1] = start`, vectorised per chunk."""
    out = np.empty(x.size)
    powers = decay ** np.arange(1, _CHUNK + 1)
    carry = start
    for lo in range(0, x.size, _CHUNK):
        part = x[lo : lo + _CHUNK]
        grow = powers[: part.size]
        # s[lo+k] = decay^(k+1) * (carry + sum_{j<=k} x[lo+j] / decay^(j+1))
        out[lo : lo + part.size] = grow * (carry + np.cumsum(part / grow))
        carry = float(out[lo + part.size - 1])
    return out


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """True range of bars 1.. (bar 0 has no previous close), TA-Lib's formula."""
    h, lo, prev = high[1:], low[1:], close[:-1]
    return np.maximum(h - lo, np.maximum(np.abs(h - prev), np.abs(lo - prev)))


def directional_movement(high: FloatArray, low: FloatArray) -> tuple[FloatArray, FloatArray]:
    """+DM and -DM of bars 1..: only the larger move counts, ties count for neither."""
    up = high[1:] - high[:-1]
    down = low[:-1] - low[1:]
    is_minus = (down > 0) & (up < down)
    is_plus = ~is_minus & (up > 0) & (up > down)
    return np.where(is_plus, up, 0.0), np.where(is_minus, down, 0.0)


def adx(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """Wilder's ADX, aligned with the input; NaN before bar 2*period - 1 (TA-Lib's)."""
    size = high.size
    out = np.full(size, np.nan)
    if size < 2 * period:
        return out
    tr = true_range(high, low, close)
    plus, minus = directional_movement(high, low)
    decay = 1.0 - 1.0 / period
    # Index j of these arrays is bar j + 1; the seeds sum bars 1..period-1.
    seed = period - 1
    tr_s = smooth(tr[seed:], decay, float(tr[:seed].sum()))
    plus_s = smooth(plus[seed:], decay, float(plus[:seed].sum()))
    minus_s = smooth(minus[seed:], decay, float(minus[:seed].sum()))
    # Element k of the smoothed arrays is bar period + k.
    valid_tr = tr_s != 0
    safe_tr = np.where(valid_tr, tr_s, 1.0)
    minus_di = 100.0 * (minus_s / safe_tr)
    plus_di = 100.0 * (plus_s / safe_tr)
    di_sum = minus_di + plus_di
    valid = valid_tr & (di_sum != 0)
    dx = 100.0 * (np.abs(minus_di - plus_di) / np.where(valid, di_sum, 1.0))
    dx = np.where(valid, dx, 0.0)

    first = float(dx[:period].sum()) / period  # ADX at bar 2*period - 1
    rest_valid = valid[period:]
    rest_dx = dx[period:][rest_valid]
    # ADX moves only on valid bars: run the recurrence over those, then hold between.
    moved = smooth(rest_dx / period, decay, first)
    held = np.concatenate(([first], moved))[np.cumsum(rest_valid)]
    out[2 * period - 1] = first
    out[2 * period :] = held
    return out


def choppiness(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """Choppiness Index, aligned with the input; NaN where the window lacks bars.

    `100 * log10(sum(TR, n) / (max(high, n) - min(low, n))) / log10(n)` over the n
    bars ending at each bar, from bar n on (the first bar has no true range). A flat
    window (highest high == lowest low) is a market going nowhere: it scores 100, the
    top of the scale, instead of dividing by zero.
    """
    out = np.full(high.size, np.nan)
    if high.size <= period:
        return out
    tr_sum = sliding_window_view(true_range(high, low, close), period).sum(axis=1)
    top = sliding_window_view(high[1:], period).max(axis=1)
    bottom = sliding_window_view(low[1:], period).min(axis=1)
    span = top - bottom
    flat = span <= 0
    ratio = np.divide(tr_sum, span, out=np.ones_like(span), where=~flat)
    chop = 100.0 * np.log10(ratio) / np.log10(period)
    out[period:] = np.where(flat, 100.0, chop)
    return out


def volatility(close: FloatArray) -> float:
    """Sample standard deviation of close-to-close log returns, per candle."""
    if close.size < 3:
        return float("nan")
    return float(np.std(np.diff(np.log(close)), ddof=1))


def quantile(x: FloatArray, q: float) -> float:
    """The `q` quantile of `x` as its nearest-rank value (np.partition: ~30x np.quantile)."""
    rank = round(q * (x.size - 1))
    return float(np.partition(x, rank)[rank])


def rolling_mean(x: FloatArray, period: int) -> FloatArray:
    """Mean of the last `period` values at each index; NaN until `period` values exist."""
    out = np.full(x.size, np.nan)
    if x.size >= period:
        out[period - 1 :] = _window_sums(x, period) / period
    return out


def _window_sums(x: FloatArray, period: int) -> FloatArray:
    """Sums of every `period` consecutive values (cumulative sums: no window views, which
    cost ~20 us each to build, more than the arithmetic on these short series)."""
    sums: FloatArray = np.cumsum(np.concatenate(([0.0], x)))
    return sums[period:] - sums[:-period]


def rolling_volatility(close: FloatArray, period: int) -> FloatArray:
    """Sample std of the last `period` log returns, aligned with `close` (NaN before)."""
    out = np.full(close.size, np.nan)
    if close.size > period:
        returns = np.diff(np.log(close))
        mean = _window_sums(returns, period) / period
        # Squares around the series mean keep the subtraction below well-conditioned.
        centred = returns - returns.mean()
        squares = _window_sums(centred * centred, period)
        shifted = mean - returns.mean()
        variance = (squares - period * shifted * shifted) / (period - 1)
        out[period:] = np.sqrt(np.maximum(variance, 0.0))
    return out


def efficiency_ratio(close: FloatArray, period: int) -> FloatArray:
    """Kaufman's efficiency ratio, aligned with `close`; NaN before bar `period`.

    `|close[i] - close[i-n]| / sum(|close[j] - close[j-1]|)` over the n moves ending at
    bar i: 1 for a straight line, near 0 for a market going back and forth. A flat
    stretch (no path at all) goes nowhere: 0.
    """
    out = np.full(close.size, np.nan)
    if close.size <= period:
        return out
    path = _window_sums(np.abs(np.diff(close)), period)
    net = np.abs(close[period:] - close[:-period])
    # A flat window has no path (and so no net move either): divided by infinity, it is 0.
    # (Not `np.divide(..., where=path > 0)`: its output holds whatever memory it was
    # given wherever `where` is False, so a slip there would read garbage only sometimes.)
    out[period:] = net / np.where(path > 0, path, np.inf)
    return out
