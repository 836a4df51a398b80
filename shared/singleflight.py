"""Single flight: concurrent callers for one key share one load instead of each doing it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one load in flight per key within this process.

    The load runs as its own task and each caller awaits it through `asyncio.shield`, so
    a caller that gives up (client disconnect, timeout) does not cancel it for the others.
    Across replicas a shared cache absorbs the duplicates.
    """

    def __init__(self) -> None:
        self._loads: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._loads)

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The result of `load()` for `key`, started now or joined if already running."""
        task = self._loads.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._loads[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._loads.get(key) is task:
            del self._loads[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning if every caller left
