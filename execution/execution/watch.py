"""The four services' health for the console: polled while someone watches, then published.

Execution's own `/health` is asked in-process (the same answer a client gets); the
other three over HTTP with a short timeout, outside the trade path's clients, so a
slow health check never trips a breaker nor takes a retry. Only while at least one
event stream is open: an unwatched console costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from execution.events import EventBus
from shared.market.models import utc_iso
from shared.transport import Request, Transport, TransportError

log = logging.getLogger(__name__)
OTHERS = ("market_data", "regime_detection", "risk_management")


class HealthWatch:
    def __init__(
        self,
        bus: EventBus,
        *,
        own: Transport,
        transport: Transport,
        urls: dict[str, str],
        interval: float,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus
        self.own = own
        self.transport = transport
        self.urls = urls
        self.interval = interval
        self.timeout = timeout
        self.watchers = 0  # open event streams
        self.latest: dict[str, Any] | None = None
        self._checked = -float("inf")
        self._clock = clock
        self._lock = asyncio.Lock()

    async def current(self) -> dict[str, Any]:
        """The latest snapshot, checked afresh when older than the interval."""
        async with self._lock:
            if self.latest is None or self._clock() - self._checked >= self.interval:
                self.latest = await self.check()
                self._checked = self._clock()
            return self.latest

    async def check(self) -> dict[str, Any]:
        """Every service's `/health` answer, or why it could not be had."""
        names = ("execution", *OTHERS)
        answers = await asyncio.gather(
            self._ask(self.own, "http://execution/health"),
            *(self._ask(self.transport, self.urls[name] + "/health") for name in OTHERS),
        )
        return {
            "services": dict(zip(names, answers, strict=True)),
            "checked_at": utc_iso(datetime.now(UTC)),
        }

    async def _ask(self, transport: Transport, url: str) -> dict[str, Any]:
        try:
            answer = await transport.send(Request("GET", url, {}, self.timeout))
            body = orjson.loads(answer.body)
        except TransportError as exc:
            return {"status": "unreachable", "error": str(exc)}
        except orjson.JSONDecodeError as exc:
            return {"status": "unreachable", "error": type(exc).__name__}
        if not isinstance(body, dict) or "status" not in body:
            return {"status": "unknown", "error": f"/health answered {answer.status}"}
        return body

    async def run(self) -> None:
        """Until cancelled: publish a fresh snapshot every interval while watched."""
        while True:
            await asyncio.sleep(self.interval)
            if self.watchers:
                try:
                    async with self._lock:
                        self.latest = await self.check()
                        self._checked = self._clock()
                    self.bus.publish("health", self.latest)
                except Exception as exc:  # the next round tries again
                    log.warning("health watch failed: %s", exc)
