"""The caches of parsed and composed deltas a shallow fetch's pack writer keeps (``_ChainDeltas``,
16 MiB each) count each kept delta as about what it holds in memory: they counted 40 bytes a piece,
and a delta of many short copies and inserts held 99 (tracemalloc), so each cache held 2.2 times
its budget."""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from backends.git_deltachain import Pieces, compose, encode_delta, parse_delta
from backends.git_fastpack import _pieces_cost

BASE = 1 << 20


def _held(make: object) -> tuple[int, Pieces]:
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        pieces = make()  # type: ignore[operator]
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, pieces
    finally:
        if not tracing:
            tracemalloc.stop()


def _delta(seed: int, base_size: int, copies: int, insert: tuple[int, int]) -> bytes:
    """A delta of ``copies`` copies from all over a base, each followed by an insert."""
    rng = random.Random(seed)
    pieces = Pieces(base_size, [], [], [], [])
    out = 0
    for _ in range(copies):
        size = rng.randint(20, 300)
        for src, length, lit in ((rng.randrange(base_size - size), size, b""), (-1, 0, rng.randbytes(rng.randint(*insert)))):
            pieces.starts.append(out)
            pieces.source.append(src)
            pieces.length.append(length or len(lit))
            pieces.literal.append(lit)
            out += length or len(lit)
    return encode_delta(pieces)


@pytest.mark.parametrize(("copies", "insert"), [(20000, (1, 12)), (3000, (100, 126)), (500, (1, 3))])
def test_a_kept_delta_is_counted_as_what_it_holds(copies: int, insert: tuple[int, int]) -> None:
    delta = _delta(copies, BASE, copies, insert)
    held, pieces = _held(lambda: parse_delta(delta))
    assert 0.8 * held <= _pieces_cost(pieces) <= 1.3 * held, (held, _pieces_cost(pieces), len(pieces))
    inner = parse_delta(_delta(7, BASE, 5000, (1, 40)))
    outer = parse_delta(_delta(9, inner.target_size, 8000, (1, 20)))
    held, composed = _held(lambda: compose(outer, inner))
    assert 0.7 * held <= _pieces_cost(composed) <= 1.4 * held, (held, _pieces_cost(composed), len(composed))
