"""The gateway's logic: answers as pre-serialised JSON bytes, cached, one load per key."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from market_data_gateway.cache import CacheResult, MarketCache
from shared.errors import DomainError, InvalidRequestError, NotFoundError
from shared.market.models import CandleSeries, Quote, utc_iso
from shared.market.simulated import SimulatedMarket
from shared.market.source import MarketSource, MarketUnavailableError, UnknownSymbolError
from shared.singleflight import SingleFlight

T = TypeVar("T")


def price_body(quote: Quote) -> bytes:
    return orjson.dumps(
        {
            "symbol": quote.symbol,
            "price": quote.price,
            "timestamp": utc_iso(quote.time),
            "source": quote.source,
        }
    )


def ohlcv_body(series: CandleSeries) -> bytes:
    data = [
        {
            "timestamp": utc_iso(c.time),
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
        }
        for c in series.candles
    ]
    body = {"symbol": series.symbol, "granularity": series.granularity, "source": series.source}
    return orjson.dumps({**body, "data": data})


def parse_instant(text: str) -> float:
    """Epoch seconds or an ISO-8601 time (naive means UTC) → epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _bad_at(text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _bad_at(text: str) -> InvalidRequestError:
    message = "must be epoch seconds or an ISO-8601 time"
    errors = [{"field": "at", "location": "query", "message": message, "type": "value_error"}]
    return InvalidRequestError(f"Invalid request: at {text!r} {message}", extra={"errors": errors})


class GatewayService:
    """Prices and candles from one market source through the cache."""

    def __init__(
        self,
        source: MarketSource,
        cache: MarketCache,
        *,
        price_ttl: float,
        incomplete_ttl: float,
        unknown_symbol_ttl: float,
        symbols_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.cache = cache
        self.price_ttl = price_ttl
        self.incomplete_ttl = incomplete_ttl
        self.unknown_symbol_ttl = unknown_symbol_ttl
        self.symbols_ttl = symbols_ttl
        self._clock = clock
        self._flight: SingleFlight[str, tuple[bytes, CacheResult]] = SingleFlight()
        # Calls that reached the source (cache misses), per kind: shown in /health.
        self.upstream_calls: Counter[str] = Counter()
        # For /metrics: answers per (kind, cache result) and source calls per (source,
        # status). A caller that joined another's load counts that load's cache result.
        self.cache_requests: Counter[tuple[str, str]] = Counter()
        self.source_requests: Counter[tuple[str, str]] = Counter()

    async def price(self, symbol: str) -> bytes:
        """The price answer; cached for at most `price_ttl`."""
        key, bucket = self._price_key(symbol)
        body = self._hit("price", key)
        if body is not None:
            return body
        self._check_known(symbol)
        return await self._counted("price", key, lambda: self._load_price(symbol, key, bucket))

    async def prices(self, symbols: Sequence[str]) -> bytes:
        """Several prices in one answer, each read (and cached) as `price` reads it; a
        symbol that cannot be priced is named in `errors` instead of failing the others."""
        return await _batch(
            "prices", symbols, lambda s: self._hit("price", self._price_key(s)[0]), self.price
        )

    async def ohlcv_many(self, symbols: Sequence[str], granularity: int, periods: int) -> bytes:
        """Several symbols' candles in one answer, each read (and cached) as `ohlcv` does."""
        return await _batch(
            "series",
            symbols,
            lambda s: self._hit("ohlcv", self._ohlcv_key(s, granularity, periods)[0]),
            lambda s: self.ohlcv(s, granularity, periods),
        )

    async def ohlcv(self, symbol: str, granularity: int, periods: int) -> bytes:
        """The candles answer; cached until the forming candle closes."""
        key, forming = self._ohlcv_key(symbol, granularity, periods)
        body = self._hit("ohlcv", key)
        if body is not None:
            return body
        self._check_known(symbol)
        return await self._counted(
            "ohlcv", key, lambda: self._load_ohlcv(symbol, granularity, periods, key, forming)
        )

    def _price_key(self, symbol: str) -> tuple[str, int]:
        # Like candles, prices are keyed by a time bucket: every replica agrees on when an
        # entry ends, whatever any cache layer's own clock says.
        bucket = math.floor(self._clock() / self.price_ttl)
        return f"price:{symbol}:{bucket}", bucket

    def _ohlcv_key(self, symbol: str, granularity: int, periods: int) -> tuple[str, int]:
        # The key names the forming candle, so it changes exactly when a candle closes,
        # whatever any cache layer's own clock says.
        forming = int(self._clock()) // granularity * granularity
        return f"ohlcv:{symbol}:{granularity}:{periods}:{forming}", forming

    def _hit(self, kind: str, key: str) -> bytes | None:
        """The answer this process holds for `key`, counted as a hit; None if it has none."""
        body = self.cache.peek(key)
        if body is not None:
            self.cache_requests[kind, "hit"] += 1
        return body

    async def symbols(self) -> bytes:
        """The source's product list; cached for `symbols_ttl` (it changes rarely)."""
        bucket = math.floor(self._clock() / self.symbols_ttl)
        key = f"symbols:{self.source.name}:{bucket}"
        body = self.cache.peek(key)
        if body is not None:
            self.cache_requests["symbols", "hit"] += 1
            return body
        return await self._counted("symbols", key, lambda: self._load_symbols(key, bucket))

    async def _load_symbols(self, key: str, bucket: int) -> tuple[bytes, CacheResult]:
        body, result = await self.cache.lookup(key)
        if body is None:
            self.upstream_calls["products"] += 1
            products = await self._from_source(self.source.products())
            body = orjson.dumps(
                {
                    "source": self.source.name,
                    "symbols": [
                        {"symbol": p.symbol, "base": p.base, "quote": p.quote, "listed": p.listed}
                        for p in products
                    ],
                }
            )
            await self.cache.set(key, body, (bucket + 1) * self.symbols_ttl - self._clock())
        return body, result

    async def _counted(
        self, kind: str, key: str, load: Callable[[], Awaitable[tuple[bytes, CacheResult]]]
    ) -> bytes:
        """The single-flight load of `key`, its cache result counted for this caller."""
        try:
            body, result = await self._flight.run(key, load)
        except BaseException:
            # The cache had no answer (the source then failed): a miss, or Redis's error.
            redis = self.cache.redis
            self.cache_requests[kind, "error" if redis is not None and redis.down else "miss"] += 1
            raise
        self.cache_requests[kind, result] += 1
        return body

    async def _from_source(self, call: Awaitable[T]) -> T:
        """A call to the market source, counted by its outcome."""
        name = self.source.name
        try:
            found = await call
        except UnknownSymbolError:
            self.source_requests[name, "not_found"] += 1
            raise
        except Exception:
            self.source_requests[name, "error"] += 1
            raise
        self.source_requests[name, "ok"] += 1
        return found

    def true_regime(self, symbol: str, granularity: int, at: str | None) -> dict[str, Any]:
        """The simulator's ground truth for the candle containing `at` (default: now)."""
        if not isinstance(self.source, SimulatedMarket):
            raise NotFoundError(
                f"ground truth exists only on the simulated source; this gateway reads "
                f"{self.source.name}"
            )
        moment = self._clock() if at is None else parse_instant(at)
        if not math.isfinite(moment) or not 0 <= moment < 253_402_300_800:  # years 1970-9999
            raise _bad_at(str(at))
        opened = math.floor(moment / granularity) * granularity
        return {
            "symbol": symbol,
            "granularity": granularity,
            "at": utc_iso(moment),
            "candle_open": utc_iso(opened),
            "regime": self.source.regime_at(symbol, granularity, moment),
        }

    def _check_known(self, symbol: str) -> None:
        # Remembered unknown symbols are answered here: they would spend the exchange's
        # rate limit on the same 404 again and again.
        if self.cache.peek(f"unknown:{symbol}") is not None:
            raise UnknownSymbolError(f"{self.source.name} does not list the product {symbol}")

    @contextmanager
    def _remember_unknown(self, symbol: str) -> Iterator[None]:
        try:
            yield
        except UnknownSymbolError:
            self.cache.local.set(f"unknown:{symbol}", b"1", self.unknown_symbol_ttl)
            raise

    async def _load_price(self, symbol: str, key: str, bucket: int) -> tuple[bytes, CacheResult]:
        body, result = await self.cache.lookup(key)
        if body is None:
            self.upstream_calls["price"] += 1
            with self._remember_unknown(symbol):
                quote = await self._from_source(self.source.price(symbol))
            body = price_body(quote)
            await self.cache.set(key, body, (bucket + 1) * self.price_ttl - self._clock())
        return body, result

    async def _load_ohlcv(
        self, symbol: str, granularity: int, periods: int, key: str, forming: int
    ) -> tuple[bytes, CacheResult]:
        body, result = await self.cache.lookup(key)
        if body is not None:
            return body, result
        self.upstream_calls["candles"] += 1
        with self._remember_unknown(symbol):
            series = await self._from_source(self.source.candles(symbol, granularity, periods))
        body = ohlcv_body(series)
        ttl = forming + granularity - self._clock()
        newest_closed = forming - granularity
        if not series.candles or series.candles[-1].time != newest_closed:
            # The newest closed candle is missing: a gap, or not published yet. Look again soon.
            ttl = min(ttl, self.incomplete_ttl)
        await self.cache.set(key, body, ttl)
        return body, result


async def _batch(
    member: str,
    symbols: Sequence[str],
    cached: Callable[[str], bytes | None],
    read: Callable[[str], Awaitable[bytes]],
) -> bytes:
    """`{member: {symbol: answer}, "errors": {symbol: {status, detail}}}` of one read per
    distinct symbol; a 503 when nothing could be had at all.

    The answers this process holds are taken at once; only the others are read, each in
    its own task, concurrently. (A task per symbol, cached or not, cost a quarter of a
    one-symbol batch, the read every trade makes.)
    """
    unique = list(dict.fromkeys(symbols))
    answers: dict[str, bytes | BaseException] = {}
    missing = []
    for symbol in unique:
        body = cached(symbol)
        if body is None:
            missing.append(symbol)
        else:
            answers[symbol] = body
    if missing:
        loaded = await asyncio.gather(*(read(s) for s in missing), return_exceptions=True)
        answers.update(zip(missing, loaded, strict=True))
    found: dict[str, orjson.Fragment] = {}
    errors: dict[str, dict[str, Any]] = {}
    for symbol in unique:
        answer = answers[symbol]
        if isinstance(answer, bytes):
            found[symbol] = orjson.Fragment(answer)
        elif isinstance(answer, DomainError):
            errors[symbol] = {"status": answer.status, "detail": answer.detail}
        else:
            raise answer
    if not found and any(e["status"] == 503 for e in errors.values()):
        # Nothing at all could be had: an outage, said as the single read says it.
        detail = "; ".join(f"{s}: {e['detail']}" for s, e in errors.items())
        raise MarketUnavailableError("market_source", detail)
    return orjson.dumps({member: found, "errors": errors})
