"""Where linear history breaks (``graph.run_breaks``) and the phases swept over those breaks only
(``graph.compute_phases``), held to the per-revision definitions on random histories, damaged
parent columns too; and the changelog views built from them at a first open."""

from __future__ import annotations

import random
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import graph
from backends.hg.repository import _checked_columns
from backends.hg.revlog import FLAG_GENERALDELTA, INDEX_ENTRY, Index
from protocols.errors import StorageError

PHASES = (0, 1, 2, 32, 96)
LINEAR = (0.5, 0.8, 0.99, 1.0)
"""How many revisions follow the one before: in real histories most (long runs, a few breaks, which
``run_breaks`` finds one by one), in some fewer (found a byte a revision)."""


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[int, int]], dict[int, int]]:
    size = draw(st.integers(0, 200))
    rng = random.Random(draw(st.integers(0, 2**32)))  # (a draw a revision made each example slow)
    linear = draw(st.sampled_from(LINEAR))
    parents: list[tuple[int, int]] = []
    for rev in range(size):
        p1 = rev - 1 if rng.random() < linear else rng.randrange(-1, rev) if rev else -1
        p2 = rng.randrange(-1, rev) if rev and rng.random() < (1 - linear) / 2 else -1
        parents.append((p1, p2))
    roots = draw(st.dictionaries(st.integers(0, max(size - 1, 0)), st.sampled_from(PHASES), max_size=6))
    return parents, {r: p for r, p in roots.items() if r < size}


def breaks_by_definition(parents: list[tuple[int, int]]) -> list[int]:
    return [rev for rev, (p1, p2) in enumerate(parents) if p1 != rev - 1 or p2 != -1]


def phases_by_definition(parents: list[tuple[int, int]], roots: dict[int, int]) -> bytearray:
    """Each revision's phase: the highest of its own root phase and its parents' (below the first
    non-public root, public)."""
    phases = bytearray(len(parents))
    first = min((rev for rev, phase in roots.items() if phase), default=len(parents))
    for rev in range(first, len(parents)):
        p1, p2 = parents[rev]
        phases[rev] = max(roots.get(rev, 0), phases[p1] if p1 >= 0 else 0, phases[p2] if p2 >= 0 else 0)
    return phases


@settings(max_examples=200, deadline=None)
@given(histories(), st.booleans())
def test_phases_swept_over_the_breaks_are_the_phases_by_definition(
        history: tuple[list[tuple[int, int]], dict[int, int]], given_breaks: bool) -> None:
    parents, roots = history
    columns = graph.ParentColumns.of(parents)
    breaks = graph.run_breaks(columns.p1, columns.p2)
    assert breaks == breaks_by_definition(parents)
    expected = phases_by_definition(parents, roots)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(graph, "RUN_SWEEP", 0)  # (the runs' path even for a short history)
        assert graph.compute_phases(columns, roots, breaks if given_breaks else None) == expected
        assert graph.compute_phases(parents, roots) == expected
    assert graph.compute_phases(columns, roots) == expected


INT32 = st.integers(-(2**31), 2**31 - 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.integers(-3, 40), INT32), st.one_of(st.integers(-3, 40), INT32)), max_size=40))
def test_any_parent_out_of_place_breaks_a_run(parents: list[tuple[int, int]]) -> None:
    """Damaged columns too: every revision not linear is found, so a check of the breaks alone is a
    check of every parent."""
    columns = graph.ParentColumns.of(parents)
    assert graph.run_breaks(columns.p1, columns.p2) == breaks_by_definition(parents)


def _packed(parents: list[tuple[int, int]]) -> bytearray:
    data = bytearray(b"".join(INDEX_ENTRY.pack(0, 0, 0, rev, rev, p1, p2, rev.to_bytes(20, "big"))
                              for rev, (p1, p2) in enumerate(parents)))
    data[:4] = (1 | FLAG_GENERALDELTA).to_bytes(4, "big")
    return data


def _index(data: bytes) -> Index:
    return Index(None, 1 | FLAG_GENERALDELTA, None, None, packed=bytes(data))


def test_a_long_history_checked_and_phased_over_its_breaks() -> None:
    """200,000 changesets with an old draft branch at 1,000 and a merge: what the first open of a
    served changelog computes, compared with the definitions; a parent out of place is refused."""
    count, fork = 200_000, 1_000
    parents = [(rev - 1, -1) for rev in range(count)]
    parents[fork + 6] = (fork, -1)  # the public line goes on from the fork; 1001..1005 a draft branch
    parents[150_000] = (149_999, fork + 5)  # the branch merged back much later
    data = _packed(parents)
    columns, breaks = _checked_columns(_index(data))
    assert breaks == breaks_by_definition(parents) == [fork + 6, 150_000]
    assert columns.p1 == array("i", [p1 for p1, _ in parents]) and columns.p2 == array("i", [p2 for _, p2 in parents])
    roots = {fork + 1: 1}
    phases = graph.compute_phases(columns, roots, breaks)
    assert phases == phases_by_definition(parents, roots)
    assert phases.count(1) == 5 + (count - 150_000)
    for bad in ((199_998, -1), (-2, -1), (199_997, 199_999), (1_000_000, -1), (5, -3)):
        damaged = bytearray(data)
        INDEX_ENTRY.pack_into(damaged, 199_998 * INDEX_ENTRY.size, 0, 0, 0, 0, 199_998, *bad, bytes(20))
        with pytest.raises(StorageError, match=f"revision 199998 has parents {bad[0]}, {bad[1]}"):
            _checked_columns(_index(damaged))


@pytest.mark.parametrize("irregular", [0.0, 0.5])
def test_a_parent_off_in_any_byte_of_its_lane_breaks_a_run(irregular: float) -> None:
    """Each byte of a 4-byte lane is looked at, whether the breaks are few (found one by one, next
    ones too) or many (a byte a revision): a parent one bit off in any byte, and breaks side by side."""
    rng = random.Random(7)
    count = 5_000
    base = [(rev - 1 if rng.random() >= irregular else rng.randrange(-1, rev) if rev else -1, -1)
            for rev in range(count)]
    for byte in range(4):
        for column in (0, 1):
            parents = list(base)
            for rev in (1_000, 1_001, 1_002, 4_999):  # (side by side, and the last)
                pair = list(parents[rev])
                pair[column] ^= 1 << (8 * byte + 3)
                parents[rev] = (pair[0], pair[1])
            columns = graph.ParentColumns.of(parents)
            assert graph.run_breaks(columns.p1, columns.p2) == breaks_by_definition(parents), (byte, column)
