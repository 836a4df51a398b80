"""Which symbols can be traded: the market source's listed products, kept for a while.

Read through `MarketDataClient` (the gateway's `/api/v1/symbols`, the source directly
when the gateway is down). When no list can be had at all the check lets the trade go
on to Risk, which refuses without a price: the list is there to refuse typos and
delisted products early, not to stop trading while the gateway restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from shared.errors import InvalidRequestError
from shared.market.client import MarketDataClient

log = logging.getLogger(__name__)
# After a failed fetch, trades go unchecked this long before the list is asked for again.
RETRY_SECONDS = 5.0


class SymbolList:
    def __init__(
        self,
        market: MarketDataClient,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.market = market
        self.ttl = ttl
        self._clock = clock
        self._listed: frozenset[str] | None = None
        self._expires = 0.0
        self._refreshing = asyncio.Lock()

    async def check(self, symbol: str) -> None:
        """Raise a 422 naming `symbol` when the source does not list it."""
        listed = self._listed if self._clock() < self._expires else await self._refresh()
        if listed is not None and symbol not in listed:
            message = f"{symbol} is not a product the market source lists for trading"
            raise InvalidRequestError(
                f"Invalid request: symbol {message}",
                extra={
                    "errors": [
                        {
                            "field": "symbol",
                            "location": "body",
                            "message": message + " (see GET /api/v1/symbols on the gateway)",
                            "type": "unlisted_symbol",
                        }
                    ]
                },
            )

    async def _refresh(self) -> frozenset[str] | None:
        async with self._refreshing:  # one fetch, however many trades wait for it
            if self._clock() < self._expires:
                return self._listed
            try:
                products = await self.market.products()
            except Exception as exc:  # no list: Risk still refuses what it cannot price
                log.warning("no product list (%s); trades go unchecked for now", exc)
                self._listed, self._expires = None, self._clock() + RETRY_SECONDS
                return None
            self._listed = frozenset(p.symbol for p in products if p.listed)
            self._expires = self._clock() + self.ttl
            return self._listed
