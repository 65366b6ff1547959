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


def test_the_values_whose_keys_name_a_path_are_let_go_in_every_cache_and_nothing_else() -> None:
    """``drop_named``: what a repository found gone left in the pool (keys naming its path, alone
    or first in a tuple), however the values came and went before."""
    pool = BudgetPool(10**6)
    stores = LruCache[bytes, tuple[Held, ...]](10**9, pool=pool, parts=_parts)
    indexes = LruCache[tuple[bytes, bytes], tuple[Held, ...]](10**9, pool=pool, parts=_parts)
    repos = LruCache[tuple[str, str], tuple[Held, ...]](10**9, pool=pool, parts=_parts)
    shared = Held(500)  # (held by a value of the gone store and one of another: stays counted once)
    stores.put(b"/r/gone/.hg/store", (Held(100), shared))
    stores.put(b"/r/gone/.hg/store", (Held(10), shared))  # (put again: one value)
    stores.put(b"/r/gone2/.hg/store", (Held(1),))
    indexes.put((b"/r/gone/.hg/store", b"00changelog.i"), (Held(200),))
    indexes.put((b"/r/other/.hg/store", b"00changelog.i"), (Held(300), shared))
    repos.put(("/r/gone", "gone"), (Held(20),))
    repos.put(("/r/gone-not", "gone-not"), (Held(40),))
    assert pool.drop_named("/r/gone", b"/r/gone/.hg/store", b"/r/nothing") == 3
    assert stores.get(b"/r/gone/.hg/store") is None and repos.get(("/r/gone", "gone")) is None
    assert indexes.get((b"/r/gone/.hg/store", b"00changelog.i")) is None
    assert stores.get(b"/r/gone2/.hg/store") and repos.get(("/r/gone-not", "gone-not"))
    assert indexes.get((b"/r/other/.hg/store", b"00changelog.i"))
    assert pool.held == 1 + 300 + 500 + 40
    assert pool.drop_named(b"/r/gone/.hg/store") == 0
    pool.budget = 0  # (what is left goes as before)
    assert pool.held == 0 and not pool._named and not pool._order
