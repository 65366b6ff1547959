"""Phase roots (backends.hg.graph) held to their definition on random histories."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import graph

PHASES = (0, 1, 2, 32, 96)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[int, int]], bytearray]:
    """A DAG in revision order (parents before children) and phases that respect it."""
    size = draw(st.integers(0, 60))
    parents: list[tuple[int, int]] = []
    for rev in range(size):
        p1 = draw(st.integers(-1, rev - 1))
        p2 = draw(st.integers(-1, rev - 1)) if p1 >= 0 and draw(st.booleans()) else -1
        parents.append((p1, p2 if p2 != p1 else -1))
    roots = draw(st.dictionaries(st.integers(0, max(size - 1, 0)), st.sampled_from(PHASES), max_size=8))
    return parents, graph.compute_phases(parents, {r: p for r, p in roots.items() if r < size})


def roots_by_definition(parents: list[tuple[int, int]], phases: bytearray) -> dict[int, list[int]]:
    """For each level p: the revisions of phase >= p none of whose parents has phase >= p."""
    roots: dict[int, list[int]] = {}
    for level in (1, 2, 32, 96):
        for rev, (p1, p2) in enumerate(parents):
            if phases[rev] >= level and not any(p >= 0 and phases[p] >= level for p in (p1, p2)):
                roots.setdefault(level, []).append(rev)
    return roots


@settings(max_examples=300, deadline=None)
@given(histories())
def test_phase_roots_are_the_minimal_revisions_of_each_phase(history: tuple[list[tuple[int, int]], bytearray]) \
        -> None:
    parents, phases = history
    assert graph.phase_roots(parents, phases) == roots_by_definition(parents, phases)


def test_an_all_public_history_has_no_roots() -> None:
    parents = [(-1, -1)] + [(r - 1, -1) for r in range(1, 5000)]
    assert graph.phase_roots(parents, bytearray(5000)) == {}


def test_a_draft_tail_is_rooted_at_its_first_revision() -> None:
    parents = [(-1, -1)] + [(r - 1, -1) for r in range(1, 10)]
    phases = graph.compute_phases(parents, {7: 1})
    assert graph.phase_roots(parents, phases) == {1: [7]}


def phases_by_definition(parents: list[tuple[int, int]], roots: dict[int, int]) -> bytearray:
    """Each revision's phase: the highest phase of a root among its ancestors (itself included)."""
    phases = bytearray(len(parents))
    for rev in range(len(parents)):
        ancestors = graph.ancestors_mask(parents, [rev])
        phases[rev] = max((phase for root, phase in roots.items() if root < len(parents) and ancestors[root]),
                          default=0)
    return phases


@settings(max_examples=200, deadline=None)
@given(histories(), st.data())
def test_phases_are_the_highest_root_phase_among_the_ancestors(
        history: tuple[list[tuple[int, int]], bytearray], data: st.DataObject) -> None:
    parents, _ = history
    roots = data.draw(st.dictionaries(st.integers(0, max(len(parents) - 1, 0)), st.sampled_from(PHASES),
                                      max_size=6))
    roots = {r: p for r, p in roots.items() if r < len(parents)}
    assert graph.compute_phases(parents, roots) == phases_by_definition(parents, roots)


@settings(max_examples=300, deadline=None)
@given(histories(), st.data())
def test_lowering_a_phase_touches_exactly_the_ancestors_above_it(
        history: tuple[list[tuple[int, int]], bytearray], data: st.DataObject) -> None:
    parents, phases = history
    revs = data.draw(st.lists(st.integers(-1, max(len(parents) - 1, -1)), max_size=4))
    phase = data.draw(st.sampled_from(PHASES))
    expected = bytearray(phases)
    for rev, inside in enumerate(graph.ancestors_mask(parents, revs)):
        if inside and expected[rev] > phase:
            expected[rev] = phase
    graph.lower_phase(parents, phases, revs, phase)
    assert phases == expected


@settings(max_examples=300, deadline=None)
@given(histories(), st.data())
def test_heads_grown_by_new_revisions_are_the_heads_of_the_whole(
        history: tuple[list[tuple[int, int]], bytearray], data: st.DataObject) -> None:
    parents, phases = history
    visible = phases.translate(graph.VISIBLE)
    start = data.draw(st.integers(0, len(parents)))
    before = graph.heads(parents[:start], visible[:start])
    assert graph.grown_heads(parents, visible, before, start) == set(graph.heads(parents, visible))
