"""`CoinbaseSource`: the public Coinbase Exchange REST API, spoken politely.

- `/products/{id}/candles`: rows `[time, low, high, open, close, volume]`, newest first,
  at most 300 per request, start/end inclusive, no row for an interval without trades,
  the newest row possibly still forming. We ask for exactly the closed buckets we want
  (never more than 300), drop anything not yet closed, keep gaps, return oldest first.
- `/products/{id}/ticker`: `price`, `bid`, `ask`, `size`, `volume` as strings and an
  RFC 3339 `time` with up to 9 fractional digits.
- Every request carries a User-Agent and passes a client-side token bucket (the public
  limit is 10 requests/s); 429, 5xx and no answer are retried by `shared.retry` with
  backoff, honouring Retry-After, all within `COINBASE_TOTAL_TIMEOUT_SECONDS`.
- Unknown product (404) → `UnknownSymbolError`; no answer → `MarketUnavailableError`.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from shared.errors import InvalidRequestError
from shared.market.coinbase_format import parse_candles, parse_rfc3339
from shared.market.models import (
    GRANULARITIES,
    MAX_CANDLES,
    SYMBOL_PATTERN,
    CandleSeries,
    Product,
    Quote,
    SourceName,
    utc_iso,
)
from shared.market.source import MarketUnavailableError, UnknownSymbolError
from shared.market.throttle import TokenBucket
from shared.retry import RetryPolicy, retry
from shared.settings import MarketSettings
from shared.transport import USER_AGENT, Request, Response, Transport, TransportError, with_query

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
Params = dict[str, str | int]
_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}


@dataclass(frozen=True, kw_only=True)
class CoinbaseOptions:
    """How politely and how patiently to talk to Coinbase (`MarketSettings`' COINBASE_*)."""

    rate_per_second: float
    burst: int
    timeout: float  # per attempt
    # The whole logical request, throttling, retries and waits included, ends within this.
    total_timeout: float
    retry: RetryPolicy

    @classmethod
    def from_settings(cls, settings: MarketSettings) -> CoinbaseOptions:
        """The knobs as the settings state them."""
        return cls(
            rate_per_second=settings.coinbase_rate_limit_per_second,
            burst=settings.coinbase_burst,
            timeout=settings.coinbase_timeout_seconds,
            total_timeout=settings.coinbase_total_timeout_seconds,
            retry=RetryPolicy(
                attempts=settings.coinbase_max_attempts,
                initial_backoff=settings.coinbase_initial_backoff_seconds,
                max_backoff=settings.coinbase_max_backoff_seconds,
            ),
        )


class _TryAgainError(MarketUnavailableError):
    """One attempt got no usable answer (unreachable, 429, 5xx, not JSON): try again."""


def check_request(symbol: str, granularity: int | None = None, periods: int | None = None) -> None:
    """Refuse, before any network call, what Coinbase could not answer."""
    if not _SYMBOL_RE.match(symbol):
        raise InvalidRequestError(f"symbol {symbol!r} is not a BASE-QUOTE product id")
    if granularity is not None and granularity not in GRANULARITIES:
        raise InvalidRequestError(f"granularity must be one of {list(GRANULARITIES)}")
    if periods is not None and not 1 <= periods <= MAX_CANDLES:
        raise InvalidRequestError(f"periods must be between 1 and {MAX_CANDLES}")


class CoinbaseSource:
    """Prices and closed candles from Coinbase Exchange over the process's transport."""

    name: SourceName = "coinbase"

    def __init__(
        self,
        transport: Transport,
        *,
        base_url: str,
        options: CoinbaseOptions,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.options = options
        self._transport = transport
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._jitter = jitter
        self._bucket = TokenBucket(
            options.rate_per_second, options.burst, clock=monotonic, sleep=sleep
        )
        # The outcome of the latest exchange call, for `/health` (no probing needed).
        self.last_error: str | None = None

    async def price(self, symbol: str) -> Quote:
        """The last trade price from the ticker."""
        check_request(symbol)
        body = await self._get_json(f"/products/{symbol}/ticker", None, symbol)
        try:
            price = float(body["price"])
            moment = parse_rfc3339(str(body["time"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise self._failed(f"Coinbase sent an unreadable ticker: {exc}") from exc
        return Quote(symbol=symbol, price=price, time=moment, source="coinbase")

    async def candles(self, symbol: str, granularity: int, periods: int) -> CandleSeries:
        """The last `periods` closed candles, oldest first, gaps kept (so maybe fewer)."""
        check_request(symbol, granularity, periods)
        forming = int(self._clock()) // granularity * granularity
        end = forming - granularity  # open time of the newest closed candle
        start = end - (periods - 1) * granularity  # start/end inclusive: exactly `periods`
        params: Params = {"granularity": granularity, "start": utc_iso(start), "end": utc_iso(end)}
        rows = await self._get_json(f"/products/{symbol}/candles", params, symbol)
        try:
            candles = parse_candles(rows, start=start, before=forming)
        except (TypeError, ValueError) as exc:
            raise self._failed(f"Coinbase sent unreadable candles: {exc}") from exc
        return CandleSeries(symbol, granularity, "coinbase", candles)

    async def products(self) -> list[Product]:
        """Coinbase's `/products`: listed when `online` and trading is not disabled."""
        rows = await self._get_json("/products", None, "products")
        try:
            return sorted(
                (
                    Product(
                        symbol=str(row["id"]),
                        base=str(row["base_currency"]),
                        quote=str(row["quote_currency"]),
                        listed=row.get("status") == "online" and not row.get("trading_disabled"),
                    )
                    for row in rows
                ),
                key=lambda p: p.symbol,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._failed(f"Coinbase sent an unreadable product list: {exc}") from exc

    async def probe(self, timeout: float) -> str | None:
        """One quick request (no retries); None when Coinbase answers, else why not."""
        try:
            answer = await self._send("/time", None, timeout)
        except TransportError as exc:
            return f"{exc} from {self.base_url}"
        if answer.status == 200 or answer.status == 429:
            return None
        return f"{self.base_url}/time answered {answer.status}"

    async def aclose(self) -> None:
        """Nothing to release: the transport belongs to the app's lifespan."""

    async def _get_json(self, path: str, params: Params | None, symbol: str) -> Any:
        attempts = 0

        async def attempt(seconds_left: float) -> Any:
            nonlocal attempts
            began = self._monotonic()
            if not await self._bucket.acquire(max_wait=seconds_left):
                detail = "too many requests queued for Coinbase (client-side rate limit)"
                raise self._failed(f"{detail} (attempts: {attempts})")
            attempts += 1
            seconds_left -= self._monotonic() - began
            return await self._attempt(path, params, symbol, max(0.05, seconds_left))

        try:
            body = await retry(
                attempt,
                on=_TryAgainError,
                policy=self.options.retry,
                timeout=self.options.total_timeout,
                clock=self._monotonic,
                sleep=self._sleep,
                jitter=self._jitter,
            )
        except _TryAgainError as exc:
            # The exchange's own hint is passed on; without one, ask again in a second.
            raise self._failed(f"{exc.detail} (attempts: {attempts})", exc.retry_after) from exc
        self.last_error = None
        return body

    async def _attempt(
        self, path: str, params: Params | None, symbol: str, seconds_left: float
    ) -> Any:
        try:
            answer = await self._send(path, params, min(self.options.timeout, seconds_left))
        except TransportError as exc:
            raise _TryAgainError("coinbase", f"Coinbase unreachable: {exc}") from exc
        status = answer.status
        if status == 200:
            try:
                return orjson.loads(answer.body)
            except orjson.JSONDecodeError:
                detail = "Coinbase answered 200 with a body that is not JSON"
                raise _TryAgainError("coinbase", detail) from None
        if status == 404:
            self.last_error = None  # an answer: the exchange is fine
            raise UnknownSymbolError(f"Coinbase does not list the product {symbol}")
        if status == 429 or status >= 500:
            detail = f"Coinbase answered {status}"
            raise _TryAgainError("coinbase", detail, retry_after=answer.retry_after())
        raise self._failed(f"Coinbase refused the request: {_message(answer)}")

    def _send(self, path: str, params: Params | None, timeout: float) -> Awaitable[Response]:
        url = with_query(self.base_url + path, params)
        return self._transport.send(Request("GET", url, _HEADERS, timeout))

    def _failed(self, detail: str, retry_after: float | None = None) -> MarketUnavailableError:
        self.last_error = detail
        return MarketUnavailableError(
            "coinbase", detail, retry_after=1.0 if retry_after is None else retry_after
        )


def _message(answer: Response) -> str:
    body = answer.decoded()
    if isinstance(body, dict) and "message" in body:
        return f"{answer.status} {body['message']}"
    return f"{answer.status}"
