"""The per-worker cache: bounded, TTL-limited hints that let a worker skip work early.

It only ever *skips*: a hit never places an order and never frees a slot, so it cannot cause
a double buy; an entry lives at most its TTL, so it cannot block a free slot for longer.
When a slot frees, the worker that freed it publishes the slot on Redis and every worker drops
its entry at once (see ``SlotEvents``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A thread-safe LRU mapping whose entries expire after ``ttl`` seconds."""

    def __init__(
        self, maxsize: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if maxsize <= 0 or ttl <= 0:
            raise ValueError("maxsize and ttl must be positive")
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= self._clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = (self._clock() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


Slot = tuple[str, str]  # (inst_id, strategy)


class WorkerCache:
    """What one worker process remembers: signals it decided and slots it saw busy."""

    def __init__(
        self,
        *,
        max_entries: int = 4096,
        seen_ttl: float = 60.0,
        busy_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seen: TTLCache[str, str] = TTLCache(max_entries, seen_ttl, clock)
        # slot -> (reason, the facts behind it): a skip by the cache tells them too.
        self.busy: TTLCache[Slot, tuple[str, str]] = TTLCache(max_entries, busy_ttl, clock)

    def remember_signal(self, signal_id: str, outcome: str) -> None:
        self.seen.put(signal_id, outcome)

    def seen_outcome(self, signal_id: str) -> str | None:
        return self.seen.get(signal_id)

    def mark_busy(self, slot: Slot, reason: str, detail: str = "") -> None:
        self.busy.put(slot, (reason, detail))

    def busy_reason(self, slot: Slot) -> str | None:
        entry = self.busy.get(slot)
        return entry[0] if entry is not None else None

    def busy_entry(self, slot: Slot) -> tuple[str, str] | None:
        """``(reason, detail)`` when the slot was seen busy within the TTL."""
        return self.busy.get(slot)

    def slot_freed(self, slot: Slot) -> None:
        self.busy.discard(slot)

    def clear(self) -> None:
        self.seen.clear()
        self.busy.clear()
