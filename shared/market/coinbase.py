"""`CoinbaseSource`: the public Coinbase Exchange REST API, spoken politely.

- `/products/{id}/candles`: rows `[time, low, high, open, close, volume]`, newest first,
  at most 300 per request, start/end inclusive, no row for an interval without trades,
  the newest row possibly still forming. We ask for exactly the closed buckets we want
  (never more than 300), drop anything not yet closed, keep gaps, return oldest first.
- `/products/{id}/ticker`: `price`, `bid`, `ask`, `size`, `volume` as strings and an
  RFC 3339 `time` with up to 9 fractional digits.
- Every request carries a User-Agent and passes a client-side token bucket (the public
  limit is 10 requests/s); 429 and 5xx are retried with backoff, honouring Retry-After.
- Unknown product (404) → `UnknownSymbolError`; no answer → `MarketUnavailableError`.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
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
from shared.market.throttle import TokenBucket, parse_retry_after
from shared.transport import USER_AGENT

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


@dataclass(frozen=True, kw_only=True)
class CoinbaseOptions:
    """How politely and how patiently to talk to Coinbase."""

    rate_per_second: float = 8.0  # below the public limit of 10 requests/s
    burst: int = 8
    max_attempts: int = 4  # per logical request, the first try included
    timeout: float = 3.0  # per attempt
    # The whole logical request, throttling, retries and waits included, ends within this,
    # so the gateway answers before its callers' 5 s service timeout.
    total_timeout: float = 4.5
    initial_backoff: float = 0.25
    max_backoff: float = 4.0
    user_agent: str = USER_AGENT


def check_request(symbol: str, granularity: int | None = None, periods: int | None = None) -> None:
    """Refuse, before any network call, what Coinbase could not answer."""
    if not _SYMBOL_RE.match(symbol):
        raise InvalidRequestError(f"symbol {symbol!r} is not a BASE-QUOTE product id")
    if granularity is not None and granularity not in GRANULARITIES:
        raise InvalidRequestError(f"granularity must be one of {list(GRANULARITIES)}")
    if periods is not None and not 1 <= periods <= MAX_CANDLES:
        raise InvalidRequestError(f"periods must be between 1 and {MAX_CANDLES}")


class CoinbaseSource:
    """Prices and closed candles from Coinbase Exchange over the process's pooled client."""

    name: SourceName = "coinbase"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        options: CoinbaseOptions | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.options = options or CoinbaseOptions()
        self._http = http
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._jitter = jitter
        self._headers = {"User-Agent": self.options.user_agent, "Accept": "application/json"}
        self._bucket = TokenBucket(
            self.options.rate_per_second, self.options.burst, clock=monotonic, sleep=sleep
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
        params = {"granularity": granularity, "start": utc_iso(start), "end": utc_iso(end)}
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
            response = await self._http.get(
                self.base_url + "/time", headers=self._headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__} from {self.base_url}"
        if response.status_code == 200 or response.status_code == 429:
            return None
        return f"{self.base_url}/time answered {response.status_code}"

    async def aclose(self) -> None:
        """Nothing to release: the pooled HTTP client belongs to the app's lifespan."""

    async def _get_json(self, path: str, params: Mapping[str, Any] | None, symbol: str) -> Any:
        opts = self.options
        deadline = self._monotonic() + opts.total_timeout
        problem = "no attempt made"
        retry_after: float | None = None
        attempts = 0
        for attempt in range(1, opts.max_attempts + 1):
            if not await self._bucket.acquire(max_wait=deadline - self._monotonic()):
                problem = "too many requests queued for Coinbase (client-side rate limit)"
                retry_after = 1.0
                break
            attempts = attempt
            delay = self._backoff(attempt)
            timeout = max(0.05, min(opts.timeout, deadline - self._monotonic()))
            try:
                response = await self._http.get(
                    self.base_url + path, params=params, headers=self._headers, timeout=timeout
                )
            except httpx.TransportError as exc:
                problem = f"Coinbase unreachable: {type(exc).__name__}"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        body = orjson.loads(response.content)
                    except orjson.JSONDecodeError:
                        problem = "Coinbase answered 200 with a body that is not JSON"
                    else:
                        self.last_error = None
                        return body
                elif status == 404:
                    self.last_error = None  # an answer: the exchange is fine
                    raise UnknownSymbolError(f"Coinbase does not list the product {symbol}")
                elif status == 429 or status >= 500:
                    problem = f"Coinbase answered {status}"
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    delay = delay if retry_after is None else retry_after
                else:
                    raise self._failed(f"Coinbase refused the request: {_message(response)}")
            if attempt == opts.max_attempts or self._monotonic() + delay > deadline:
                break
            await self._sleep(delay)
        # Without the exchange's own hint, the next backoff is when asking again makes sense.
        raise self._failed(
            f"{problem} (attempts: {attempts})", delay if retry_after is None else retry_after
        )

    def _backoff(self, attempt: int) -> float:
        base = min(self.options.max_backoff, self.options.initial_backoff * 2.0 ** (attempt - 1))
        return base * (0.5 + self._jitter() / 2)  # jitter so replicas do not retry in step

    def _failed(self, detail: str, retry_after: float = 1.0) -> MarketUnavailableError:
        self.last_error = detail
        return MarketUnavailableError("coinbase", detail, retry_after=retry_after)


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return f"{response.status_code}"
    if isinstance(body, dict) and "message" in body:
        return f"{response.status_code} {body['message']}"
    return f"{response.status_code}"
