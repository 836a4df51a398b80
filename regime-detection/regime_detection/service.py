"""`RegimeService`: candles in through `MarketDataClient`, a regime out, cached per candle.

One request costs one candle call (the window and the volatility baseline together) and
one numpy pass. The answer for a (symbol, granularity, periods) is kept until the next
candle closes, since nothing it is computed from can change before then; concurrent
requests for the same key share one computation.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from regime_detection.classify import Reading, Thresholds, assess
from regime_detection.config import Settings
from shared.market.client import MarketDataClient
from shared.market.models import MAX_CANDLES, CandleSeries, SourceName, Via

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
    expires: float
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
        self._answers: OrderedDict[Key, _Entry] = OrderedDict()
        self._pending: dict[Key, asyncio.Task[Assessment]] = {}
        # Classifications computed, by regime (cached answers are not counted again).
        self.classifications: Counter[str] = Counter()

    async def assess(self, symbol: str, granularity: int, periods: int | None) -> Assessment:
        """The regime of `symbol` over the last `periods` candles (default from settings)."""
        key = (symbol, granularity, periods or self.settings.default_periods)
        cached = self._answers.get(key)
        if cached is not None and self._clock() < cached.expires:
            return cached.answer
        task = self._pending.get(key)
        if task is None:
            # A task, not the first caller's coroutine: a caller that goes away must not
            # cancel the computation the others are waiting for.
            task = asyncio.ensure_future(self._compute(*key))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task)

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

    def _settle(self, key: Key, task: asyncio.Task[Assessment]) -> None:
        del self._pending[key]
        if not task.cancelled() and task.exception() is None:
            self._remember(key, task.result())

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
        self._answers[key] = _Entry(expires, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.settings.answer_cache_size:
            self._answers.popitem(last=False)


def _arrays(series: CandleSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.array([(c.high, c.low, c.close) for c in series.candles], dtype=np.float64)
    rows = rows.reshape(-1, 3)
    return rows[:, 0], rows[:, 1], rows[:, 2]
