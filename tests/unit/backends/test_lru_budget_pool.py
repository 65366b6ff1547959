"""``BudgetPool``: caches sharing one budget in bytes, an object several values hold counted once,
the least recently used value of any of them out first, a value weighed again as it grows."""

from __future__ import annotations

from backends.lru import BudgetPool, LruCache


class Held:
    def __init__(self, size: int) -> None:
        self.size = size


def _parts(value: tuple[Held, ...]) -> list[tuple[object, int]]:
    return [(held, held.size) for held in value]


def test_an_object_held_by_values_of_two_caches_is_counted_once() -> None:
    pool = BudgetPool(1000)
    views = LruCache[str, tuple[Held, ...]](10**9, pool=pool, parts=_parts)
    repos = LruCache[str, tuple[Held, ...]](10**9, pool=pool, parts=_parts)
    index = Held(600)
    views.put("a", (Held(100), index))
    repos.put("a", (Held(50), index))
    assert pool.held == 750
    views.put("b", (Held(200),))  # 950: all fit
    assert pool.held == 950 and repos.get("a") is not None
    views.put("c", (Held(300),))  # 1,250: the least recently used of either cache goes until it fits
    assert views.get("a") is None and views.get("b") is None  # (the index stays: the repository holds it)
    assert repos.get("a") is not None and views.get("c") is not None
    assert pool.held == 50 + 600 + 300


def test_a_value_holding_more_than_the_budget_is_not_kept_and_a_grown_one_is_weighed_again() -> None:
    pool = BudgetPool(1000)
    cache = LruCache[str, tuple[Held, ...]](10**9, pool=pool, parts=_parts, regrow=True)
    cache.put("huge", (Held(1001),))
    assert cache.get("huge") is None and pool.held == 0
    small, other = Held(100), Held(300)
    cache.put("small", (small,))
    cache.put("other", (other,))
    small.size = 800  # (it parsed more since it was kept)
    assert cache.get("small") is not None  # weighed again: the other goes
    assert cache.get("other") is None and pool.held == 800
    small.size = 2000
    assert cache.get("small") is not None  # (given to this request) ...
    assert cache.get("small") is None and pool.held == 0  # ... but no longer kept
    pool.budget = 0
    assert pool.held == 0
