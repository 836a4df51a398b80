"""`RegimeService`: candles in through `MarketDataClient`, a regime out, cached per candle.

One request costs one candle call (the window and the volatility baseline together) and
one numpy pass. The answer for a (symbol, granularity, periods) is kept until the next
candle closes, since nothing it is computed from can change before then; concurrent
requests for the same key share one computation.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from regime_detection.classify import Reading, Thresholds, assess
from regime_detection.config import Settings
from shared.market.client import MarketDataClient
from shared.market.models import MAX_CANDLES, CandleSeries, SourceName, Via
from shared.singleflight import SingleFlight
from shared.ttl_cache import TTLCache

Key = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Assessment:
    """A reading with what it was computed from."""

    symbol: str
    granularity: int
    periods: int
    reading: Reading
    candles: int  # in the indicator window
    baseline_candles: int
    as_of: float | None  # close time of the newest candle used
    computed_at: float
    source: SourceName
    via: Via


@dataclass(slots=True)
class _Entry:
    answer: Assessment
    body: bytes | None = None  # the rendered answer, once asked for


class RegimeService:
    """Assesses regimes from the market client's candles."""

    def __init__(
        self,
        market: MarketDataClient,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.market = market
        self.settings = settings
        self.thresholds = Thresholds.from_settings(settings)
        self._clock = clock
        self._answers: TTLCache[Key, _Entry] = TTLCache(
            max_entries=max(1, settings.answer_cache_size), clock=clock
        )
        self._flight: SingleFlight[Key, Assessment] = SingleFlight()
        # Classifications computed, by regime (cached answers are not counted again).
        self.classifications: Counter[str] = Counter()

    async def assess(self, symbol: str, granularity: int, periods: int | None) -> Assessment:
        """The regime of `symbol` over the last `periods` candles (default from settings)."""
        key = (symbol, granularity, periods or self.settings.default_periods)
        cached = self._answers.get(key)
        if cached is not None:
            return cached.answer
        # Concurrent requests for one key share one computation, which completes (and is
        # remembered) even if every caller goes away.
        return await self._flight.run(key, lambda: self._compute_and_remember(key))

    def rendered(self, answer: Assessment, render: Callable[[Assessment], bytes]) -> bytes:
        """`render(answer)`, rendered once while `answer` is the cached one for its key.

        A cached answer is served many times before the next candle closes; its body
        need not be rebuilt (and revalidated) for each of them.
        """
        entry = self._answers.get((answer.symbol, answer.granularity, answer.periods))
        if entry is None or entry.answer is not answer:
            return render(answer)
        if entry.body is None:
            entry.body = render(answer)
        return entry.body

    async def _compute_and_remember(self, key: Key) -> Assessment:
        answer = await self._compute(*key)
        self._remember(key, answer)
        return answer

    async def _compute(self, symbol: str, granularity: int, periods: int) -> Assessment:
        fetch = min(max(periods, self.settings.baseline_periods), MAX_CANDLES)
        series = await self.market.candles(symbol, granularity, fetch)
        high, low, close = _arrays(series)
        reading = assess(
            high, low, close, periods=periods, granularity=granularity, th=self.thresholds
        )
        self.classifications[reading.regime] += 1
        newest = series.candles[-1].time + granularity if series.candles else None
        return Assessment(
            symbol=symbol,
            granularity=granularity,
            periods=periods,
            reading=reading,
            candles=min(periods, close.size),
            baseline_candles=close.size,
            as_of=newest,
            computed_at=self._clock(),
            source=series.source,
            via=series.via,
        )

    def _remember(self, key: Key, answer: Assessment) -> None:
        if self.settings.answer_cache_size == 0:
            return
        now = self._clock()
        granularity = key[1]
        current_open = math.floor(now / granularity) * granularity
        if answer.as_of is not None and answer.as_of >= current_open:
            expires: float = current_open + granularity  # the newest candle is in: next close
        else:
            # The exchange may publish a closed candle a little late: look again soon.
            expires = now + self.settings.late_candle_retry_seconds
        self._answers.set(key, _Entry(answer), expires - now)


def _arrays(series: CandleSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.array([(c.high, c.low, c.close) for c in series.candles], dtype=np.float64)
    rows = rows.reshape(-1, 3)
    return rows[:, 0], rows[:, 1], rows[:, 2]
