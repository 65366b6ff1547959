"""A bounded, thread-safe least-recently-used cache, for what one request leaves the next: parsed
revlog indexes and views of the Mercurial engine, parsed packed-refs of git repositories."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """Values kept between opens of a repository, least recently used first out, within ``budget``.

    ``cost`` says what a value counts against the budget (1 each by default);
    a value costing over a quarter of it is not kept, so that one cannot push
    out everything else.  Safe to share between threads.
    """

    def __init__(self, budget: int, cost: Callable[[V], int] = lambda value: 1) -> None:
        self.budget = budget
        self._cost = cost
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def values(self) -> list[V]:
        """The values kept now, least recently used first (a copy: for a report, ``/.metrics``)."""
        with self._lock:
            return [value for value, _ in self._entries.values()]

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: K, value: V) -> None:
        cost = self._cost(value)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._held -= old[1]
            if cost > self.budget // 4:
                return
            self._entries[key] = (value, cost)
            self._held += cost
            while self._held > self.budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._held -= dropped
