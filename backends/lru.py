"""A bounded, thread-safe least-recently-used cache, for what one request leaves the next: parsed
revlog indexes and views of the Mercurial engine, parsed packed-refs of git repositories."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

Parts = Callable[[Any], Iterable[tuple[object, int]]]
"""What a pooled cache's value holds, as (object, bytes) pairs: an object held by several
values (of one cache or of several) is counted once (``BudgetPool``)."""


class BudgetPool:
    """One budget in bytes over several caches' values, least recently used first out across them.

    Each value is weighed as the objects it holds (``Parts``), every object counted once however
    many values hold it (a changelog's parsed index is held by the views computed from it, by a
    kept repository and by the shared index cache: one copy in memory, counted once).  A value is
    weighed again when its cache is asked to (``LruCache(regrow=True)``, at each ``get``): what
    it holds may grow after it was kept (a node map built, heads computed).  A value holding more
    than the whole budget is not kept.  The caches of a pool share its lock.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self.lock = threading.RLock()
        self._order: OrderedDict[tuple[int, object], LruCache[Any, Any]] = OrderedDict()
        self._objects: dict[int, list[Any]] = {}
        """id -> [the object, its bytes, how many kept values hold it]."""
        self._held = 0
        self._named: dict[str | bytes, set[tuple[int, object]]] = {}
        """The kept values' places in ``_order`` by the path their key names (``named_path``)."""

    @property
    def held(self) -> int:
        """Bytes the kept values hold in all, each object counted once."""
        return self._held

    @property
    def budget(self) -> int:
        return self._budget

    @budget.setter
    def budget(self, budget: int) -> None:
        """A new budget, applied at once (a lowered one lets go of the least recently used)."""
        with self.lock:
            self._budget = budget
            self._shrink(None)

    def drop_named(self, *paths: str | bytes) -> int:
        """Let go of every kept value, in whichever cache of the pool, whose key names one of
        ``paths`` (``named_path``: a repository found gone); how many went.  Costs what they are,
        not what the pool holds (the event loop may ask it: a backend's ``locate``)."""
        dropped = 0
        with self.lock:
            for path in paths:
                for entry in list(self._named.get(path, ())):
                    cache = self._order.pop(entry, None)
                    if cache is not None:
                        cache._drop(entry[1])
                        dropped += 1
        return dropped

    def _enter(self, entry: tuple[int, object], cache: LruCache[Any, Any]) -> None:
        self._order[entry] = cache
        path = named_path(entry[1])
        if path is not None:
            self._named.setdefault(path, set()).add(entry)

    def _leave(self, entry: tuple[int, object]) -> None:
        path = named_path(entry[1])
        named = self._named.get(path) if path is not None else None
        if named is not None:
            named.discard(entry)
            if not named:
                del self._named[path]  # type: ignore[arg-type]

    def _hold(self, parts: list[tuple[object, int]]) -> tuple[int, ...]:
        ids = []
        for obj, size in parts:
            key = id(obj)
            found = self._objects.get(key)
            if found is None:
                self._objects[key] = [obj, size, 1]
                self._held += size
            else:
                found[2] += 1
                self._held += size - found[1]  # (weighed again: it grew)
                found[1] = size
            ids.append(key)
        return tuple(ids)

    def _release(self, ids: tuple[int, ...]) -> None:
        for key in ids:
            found = self._objects[key]
            found[2] -= 1
            if not found[2]:
                del self._objects[key]
                self._held -= found[1]

    def _shrink(self, keep: tuple[int, object] | None) -> None:
        while self._held > self._budget and self._order:
            first = next(iter(self._order))
            if first == keep:
                if len(self._order) == 1:
                    return
                self._order.move_to_end(first)
                continue
            cache = self._order.pop(first)
            cache._drop(first[1])


class LruCache(Generic[K, V]):
    """Values kept between opens of a repository, least recently used first out, within ``budget``.

    ``cost`` says what a value counts against the budget (1 each by default);
    a value costing over a quarter of it is not kept, so that one cannot push
    out everything else.  Safe to share between threads.

    In a ``pool`` (``BudgetPool``), its values are weighed by what they hold (``parts``; else
    ``cost``) against the pool's budget, with every other cache's of the pool, and one holding
    more than the whole pool's budget is not kept; ``budget`` still bounds this cache's values
    alone (their parts summed), a quarter of it each.
    ``regrow``: weigh a value again at each ``get``; ``max_entries``: keep no more than these.
    """

    def __init__(self, budget: int, cost: Callable[[V], int] = lambda value: 1, *,
                 pool: BudgetPool | None = None, parts: Callable[[V], Iterable[tuple[object, int]]] | None = None,
                 regrow: bool = False, max_entries: int | None = None) -> None:
        self.budget = budget
        self._pool = pool
        self._parts: Callable[[V], Iterable[tuple[object, int]]] = parts or (lambda value: ((value, cost(value)),))
        self._regrow = regrow
        self._max_entries = max_entries
        self._cost = cost
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._held_ids: dict[K, tuple[int, ...]] = {}
        self._held = 0
        self._lock: threading.Lock | threading.RLock = threading.Lock() if pool is None else pool.lock

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
            pool = self._pool
            if pool is not None:
                pool._order.move_to_end((id(self), key))
                if self._regrow:
                    self._weigh(key, found[0])
            return found[0]

    def reweigh(self, key: K) -> None:
        """Weigh the value kept for ``key`` again (it holds more, or less, than when it was kept)."""
        if self._pool is None:
            return
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._weigh(key, found[0])

    def _weigh(self, key: K, value: V) -> None:
        """(Under the pool's lock) weigh a kept value again, letting go of others (or of it) for
        what it grew by."""
        pool = self._pool
        assert pool is not None
        parts = list(self._parts(value))
        cost = sum(size for _, size in parts)
        old_ids = self._held_ids[key]
        self._held_ids[key] = pool._hold(parts)
        pool._release(old_ids)
        self._held += cost - self._entries[key][1]
        self._entries[key] = (value, cost)
        if self._too_large(cost):
            self._forget(key)
            return
        self._evict_own()
        pool._shrink((id(self), key))

    def put(self, key: K, value: V) -> None:
        if self._pool is not None:
            self._put_pooled(key, value)
            return
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

    def _put_pooled(self, key: K, value: V) -> None:
        pool = self._pool
        assert pool is not None
        parts = list(self._parts(value))
        cost = sum(size for _, size in parts)
        with self._lock:
            if key in self._entries:
                self._forget(key)
            if self._too_large(cost):
                return  # (larger than the whole budget: served, not kept)
            self._entries[key] = (value, cost)
            self._held += cost
            self._held_ids[key] = pool._hold(parts)
            pool._enter((id(self), key), self)
            self._evict_own()
            pool._shrink((id(self), key))

    def drop_where(self, match: Callable[[K], bool]) -> int:
        """Let go of every kept value whose key ``match`` (``naming_under``); how many went."""
        with self._lock:
            gone = [key for key in self._entries if match(key)]
            for key in gone:
                if self._pool is not None:
                    self._forget(key)
                else:
                    self._held -= self._entries.pop(key)[1]
            return len(gone)

    def resize(self, budget: int) -> None:
        """A new ``budget``, applied at once: a value costing more than a quarter of it goes (0
        keeps nothing), then the least recently used until the rest fit (a raised one keeps more
        from the next ``put``)."""
        with self._lock:
            self.budget = budget
            for key in [key for key, (_, cost) in self._entries.items() if cost > budget // 4]:
                self._let_go(key)
            while self._held > budget and self._entries:
                self._let_go(next(iter(self._entries)))

    def _let_go(self, key: K) -> None:
        """(Under the lock) let go of a kept value, pooled or not."""
        if self._pool is not None:
            self._forget(key)
        else:
            self._held -= self._entries.pop(key)[1]

    def _too_large(self, cost: int) -> bool:
        """Whether a pooled value costing ``cost`` is not kept: over a quarter of this cache's
        ``budget``, or over the whole pool's."""
        assert self._pool is not None
        return cost > self.budget // 4 or cost > self._pool.budget

    def _evict_own(self) -> None:
        while (self._held > self.budget or (self._max_entries is not None and len(self._entries) > self._max_entries)) \
                and len(self._entries) > 1:
            self._forget(next(iter(self._entries)))

    def _forget(self, key: K) -> None:
        """(Under the pool's lock) let go of a kept value."""
        assert self._pool is not None
        self._pool._order.pop((id(self), key), None)
        self._drop(key)

    def _drop(self, key: object) -> None:
        _, cost = self._entries.pop(key)  # type: ignore[arg-type]
        self._held -= cost
        assert self._pool is not None
        self._pool._release(self._held_ids.pop(key))  # type: ignore[arg-type]
        self._pool._leave((id(self), key))


def named_path(key: object) -> str | bytes | None:
    """The path a cache's key names, as str or bytes, alone or first in a tuple (a repository's
    directory, an hg store's: ``BudgetPool.drop_named``); None for a key that names none."""
    first = key[0] if isinstance(key, tuple) and key else key
    return first if isinstance(first, (str, bytes)) else None


def naming_under(path: str) -> Callable[[object], bool]:
    """Whether a cache's key names a file at or below directory ``path`` (as str or bytes, alone or
    first in a tuple): what the process-wide caches keep of a repository there, by its files'
    paths (an hg store's directory, a pack's index, ``packed-refs``) or its own."""
    text = path.rstrip(os.sep)
    below = text + os.sep
    raw, raw_below = os.fsencode(text), os.fsencode(below)

    def match(key: object) -> bool:
        first = key[0] if isinstance(key, tuple) and key else key
        if isinstance(first, str):
            return first == text or first.startswith(below)
        if isinstance(first, bytes):
            return first == raw or first.startswith(raw_below)
        return False
    return match
