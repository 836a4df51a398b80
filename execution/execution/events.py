"""The process's live events, fanned out to whoever listens (event streams, the history).

In-process only: with several Execution replicas each stream sees the trades its own
replica made (and every replica's history points land in the shared ledger).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["order", "portfolio", "trading_state", "health"]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    data: dict[str, Any]


class EventBus:
    """Publish without waiting; each subscriber has a bounded queue that drops its oldest
    event when full, so a slow reader never holds up a trade nor grows memory."""

    def __init__(self, *, max_queued: int = 256) -> None:
        self.max_queued = max_queued
        self._queues: set[asyncio.Queue[Event]] = set()

    def publish(self, kind: EventKind, data: dict[str, Any]) -> None:
        event = Event(kind, data)
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self.max_queued)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
