"""A small time-bounded cache for per-request lookups whose answer may lag the database by a few seconds
(credentials checked on every call of a busy client, say): bounded in size, entries expire by age."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._entries[key]
            return None
        return found[0]

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self.max_entries:  # bounded: stale and live entries are dropped wholesale
            self._entries.clear()
        self._entries[key] = (value, self._clock() + self.ttl_s)

    def clear(self) -> None:
        self._entries.clear()
