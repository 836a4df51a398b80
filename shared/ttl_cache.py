"""`TTLCache`: an in-process map whose entries expire, bounded in entries."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Entries live `ttl` seconds by `clock`; when full, expired entries go first, then
    the oldest tenth at once (so a full cache is not rescanned on every set)."""

    def __init__(self, *, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The live value of `key`, if any."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def set(self, key: K, value: V, ttl: float) -> None:
        """Keep `value` for `ttl` seconds (not at all if `ttl` <= 0)."""
        if ttl <= 0:
            return
        if key not in self._entries and len(self._entries) >= self.max_entries:
            self._evict()
        self._entries[key] = (self._clock() + ttl, value)

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        if len(self._entries) >= self.max_entries:
            for key in list(self._entries)[: max(1, self.max_entries // 10)]:
                del self._entries[key]
