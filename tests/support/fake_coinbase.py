"""A fake Coinbase Exchange for tests: the public REST formats, exactly, and failures on demand.

    fake = FakeCoinbase(seed=1)
    with fake.serve():                               # COINBASE_API_URL=fake.url
        fake.fail_next(429, times=2, retry_after=1)  # the next two requests are refused
        fake.gaps.add(1_700_000_040)                 # no trades in that minute: no row
        ...
        fake.requests["/products/BTC-USD/candles"]   # how often each path was asked

Also a process: `python -m tests.support.fake_coinbase --port 9000 [--seed 1]`.

What it speaks (as the real exchange does):
- `GET /products/{id}/candles?granularity&start&end`: rows `[time, low, high, open, close,
  volume]`, newest first; start/end inclusive (ISO 8601 or epoch seconds); more than 300
  buckets → 400 "Count of aggregations requested exceeds 300"; no row for a gap; the
  forming candle is served when the range reaches it (or always, with `serve_forming`).
- `GET /products/{id}/ticker`: `price`, `bid`, `ask`, `size`, `volume` as strings,
  `time` RFC 3339 with 9 fractional digits.
- `GET /time`; unknown product → 404 `{"message":"NotFound"}`; no User-Agent → 400.
Prices are a pure function of (seed, product, time), so candles agree across requests.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import serve_in_thread

GRANULARITIES = frozenset({60, 300, 900, 3600, 21600, 86400})
MAX_CANDLES = 300
PRODUCTS: Mapping[str, float] = {
    "BTC-USD": 60_000.0,
    "ETH-USD": 3_000.0,
    "SOL-USD": 150.0,
    "DOGE-USD": 0.15,
    "ETH-BTC": 0.05,
}


@dataclass(frozen=True)
class FakeCall:
    """One request the fake received."""

    path: str
    params: dict[str, str]
    user_agent: str | None
    status: int


@dataclass
class _Failure:
    status: int
    remaining: int
    retry_after: str | None
    path_contains: str | None


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _rfc3339_nanos(ts: float) -> str:
    whole = math.floor(ts)
    nanos = round((ts - whole) * 1e9) % 1_000_000_000
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _parse_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class FakeCoinbase:
    """The fake exchange; `app` is the ASGI app, the attributes steer its answers."""

    def __init__(
        self,
        *,
        seed: int = 1,
        clock: Callable[[], float] = time.time,
        products: Mapping[str, float] | None = None,
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.products: dict[str, float] = dict(PRODUCTS if products is None else products)
        self.gaps: set[int] = set()  # candle open times with no trades: no row is served
        self.serve_forming = False  # serve the forming candle even past the requested end
        self.latency = 0.0  # seconds every answer is delayed (without blocking the server)
        self.url = ""  # where it is served; set by `serve()` (or by whoever serves `app`)
        self.requests: Counter[str] = Counter()
        self.calls: list[FakeCall] = []
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/time", self._time),
                Route("/products", self._products),
                Route("/products/{product}/candles", self._candles),
                Route("/products/{product}/ticker", self._ticker),
            ]
        )

    @contextmanager
    def serve(self, port: int | None = None) -> Iterator[FakeCoinbase]:
        """Serve the fake from a uvicorn thread on 127.0.0.1 for the block; sets `url`."""
        with serve_in_thread(self.app, port) as server:
            self.url = server.url
            try:
                yield self
            finally:
                self.url = ""

    # --- steering, from tests ------------------------------------------------------

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: float | str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (queued in order)."""
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._failures.append(_Failure(status, times, header, path_contains))

    def clear_failures(self) -> None:
        """Forget every queued failure."""
        with self._lock:
            self._failures.clear()

    def count(self, suffix: str = "") -> int:
        """Requests received on paths ending with `suffix` (all requests by default)."""
        with self._lock:
            return sum(n for path, n in self.requests.items() if path.endswith(suffix))

    def price_at(self, product: str, t: float) -> float:
        """The fake's price path: smooth waves plus per-minute noise, a pure function."""
        base = self.products[product]
        phase = self._unit(product, "phase") * 2 * math.pi
        noise = self._unit(product, str(math.floor(t / 60))) - 0.5
        wave = 0.02 * math.sin(2 * math.pi * t / 86_400 + phase)
        wave += 0.004 * math.sin(2 * math.pi * t / 3_600 + 2 * phase)
        return base * math.exp(wave + 0.001 * noise)

    def candle(self, product: str, granularity: int, t: int, now: float) -> list[float]:
        """The row `[time, low, high, open, close, volume]` of the candle opening at `t`."""
        open_ = self.price_at(product, t)
        close = self.price_at(product, min(t + granularity, now))
        spread = 1 + 0.0005 * self._unit(product, f"hl:{granularity}:{t}")
        high, low = max(open_, close) * spread, min(open_, close) / spread
        volume = round(1 + 10 * self._unit(product, f"v:{granularity}:{t}"), 8)
        return [t, low, high, open_, close, volume]

    # --- the exchange ------------------------------------------------------------------

    async def _time(self, request: Request) -> JSONResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        now = self.clock()
        return self._ok(request, {"iso": _rfc3339_nanos(now), "epoch": round(now, 3)})

    async def _candles(self, request: Request) -> JSONResponse:
        refused = await self._gate(request, request.path_params["product"])
        if refused is not None:
            return refused
        product = request.path_params["product"]
        q = request.query_params
        try:
            granularity = int(q.get("granularity", "60"))
            now = self.clock()
            end = _parse_time(q["end"]) if "end" in q else now
            start = (
                _parse_time(q["start"]) if "start" in q else end - (MAX_CANDLES - 1) * granularity
            )
        except (ValueError, KeyError):
            return self._refuse(request, 400, "Invalid start or end")
        if granularity not in GRANULARITIES:
            return self._refuse(request, 400, "Unsupported granularity")
        if start > end:
            return self._refuse(request, 400, "start must be before end")
        if math.floor((end - start) / granularity) + 1 > MAX_CANDLES:
            return self._refuse(request, 400, "Count of aggregations requested exceeds 300")
        forming = math.floor(now / granularity) * granularity
        last = (
            forming
            if self.serve_forming
            else min(forming, math.floor(end / granularity) * granularity)
        )
        first = math.ceil(start / granularity) * granularity
        rows = [
            self.candle(product, granularity, t, now)
            for t in range(last, first - 1, -granularity)  # newest first, as Coinbase sends
            if t not in self.gaps
        ]
        return self._ok(request, rows)

    async def _ticker(self, request: Request) -> JSONResponse:
        refused = await self._gate(request, request.path_params["product"])
        if refused is not None:
            return refused
        product = request.path_params["product"]
        now = self.clock()
        price = self.price_at(product, now)
        body = {
            "ask": f"{price * 1.0001:.8f}",
            "bid": f"{price * 0.9999:.8f}",
            "volume": "12345.67890123",
            "trade_id": int(now),
            "price": f"{price:.8f}",
            "size": "0.01000000",
            "time": _rfc3339_nanos(now),
            "rfq_volume": "0.000000",
        }
        return self._ok(request, body)

    async def _products(self, request: Request) -> JSONResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        rows = [
            {
                "id": product,
                "base_currency": product.split("-")[0],
                "quote_currency": product.split("-")[1],
                "status": "online",
                "trading_disabled": False,
            }
            for product in sorted(self.products)
        ]
        # A product Coinbase knows but has delisted: known, not listed.
        rows.append(
            {
                "id": "OLD-USD",
                "base_currency": "OLD",
                "quote_currency": "USD",
                "status": "delisted",
                "trading_disabled": True,
            }
        )
        return self._ok(request, rows)

    async def _gate(self, request: Request, product: str | None = None) -> JSONResponse | None:
        """Count the request, then refuse it if a failure, a missing UA or the product says so."""
        with self._lock:
            self.requests[request.url.path] += 1
            failure = self._take_failure(request.url.path)
        if self.latency:
            await asyncio.sleep(self.latency)
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            phrase = "Too Many Requests" if failure.status == 429 else "Internal Server Error"
            return self._refuse(request, failure.status, phrase, headers)
        if not request.headers.get("user-agent"):
            return self._refuse(request, 400, "User-Agent header is required.")
        if product is not None and product not in self.products:
            return self._refuse(request, 404, "NotFound")
        return None

    def _take_failure(self, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.path_contains is None or failure.path_contains in path:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _ok(self, request: Request, body: Any) -> JSONResponse:
        self._record(request, 200)
        return JSONResponse(body)

    def _refuse(
        self, request: Request, status: int, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        self._record(request, status)
        return _message(status, message, headers)

    def _record(self, request: Request, status: int) -> None:
        call = FakeCall(
            request.url.path, dict(request.query_params), request.headers.get("user-agent"), status
        )
        with self._lock:
            self.calls.append(call)

    def _unit(self, product: str, salt: str) -> float:
        digest = hashlib.blake2b(f"{self.seed}:{product}:{salt}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64


def create_app(seed: int = 1) -> Starlette:
    """An app factory for `uvicorn tests.support.fake_coinbase:create_app --factory`."""
    return FakeCoinbase(seed=seed).app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Coinbase Exchange REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(create_app(args.seed), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
