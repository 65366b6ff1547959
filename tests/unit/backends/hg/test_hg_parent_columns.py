"""graph.ParentColumns, the views' parents as two int columns, held to the list of pairs it replaces."""

from __future__ import annotations

import os
import subprocess
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import graph, open_repository, revlog
from backends.hg.graph import ParentColumns
from tests.conftest import VENV_BIN


@st.composite
def dags(draw: st.DrawFn) -> list[tuple[int, int]]:
    """(p1, p2) of each revision of a DAG in revision order (parents before children)."""
    size = draw(st.integers(0, 80))
    parents: list[tuple[int, int]] = []
    for rev in range(size):
        p1 = draw(st.integers(-1, rev - 1))
        p2 = draw(st.integers(-1, rev - 1)) if draw(st.booleans()) else -1
        parents.append((p1, p2))
    return parents


def columns_of(parents: list[tuple[int, int]]) -> ParentColumns:
    return ParentColumns(array("i", (p for p, _ in parents)), array("i", (p for _, p in parents)))


@settings(max_examples=300, deadline=None)
@given(dags(), st.data())
def test_columns_read_as_the_list_of_pairs(parents: list[tuple[int, int]], data: st.DataObject) -> None:
    columns = columns_of(parents)
    assert len(columns) == len(parents)
    assert list(columns) == parents
    assert list(enumerate(columns)) == list(enumerate(parents))
    assert columns == parents and columns == columns_of(parents) and ParentColumns.of(parents) == columns
    for rev in range(-len(parents), len(parents)):
        assert columns[rev] == parents[rev]
        p1, p2 = columns[rev]
        assert type(p1) is int and type(p2) is int
    with pytest.raises(IndexError):
        columns[len(parents)]
    start = data.draw(st.integers(0, len(parents)))
    stop = data.draw(st.integers(start, len(parents)))
    assert list(columns[start:stop]) == parents[start:stop]
    head, tail = parents[:start], parents[start:]
    assert list(columns_of(head) + tail) == parents
    assert list(columns_of(head) + columns_of(tail)) == parents
    own = columns_of(head).copy()
    own.extend(tail)
    assert list(own) == parents


@settings(max_examples=300, deadline=None)
@given(dags(), st.data())
def test_extending_a_copy_leaves_the_shared_columns_as_they_were(parents: list[tuple[int, int]],
                                                                 data: st.DataObject) -> None:
    shared = columns_of(parents)
    own = shared.copy()
    own.append((-1, -1))
    own.extend([(0, -1)] * data.draw(st.integers(0, 3)))
    assert list(shared) == parents and len(own) > len(shared)


@settings(max_examples=300, deadline=None)
@given(dags(), st.data())
def test_heads_of_the_columns_are_the_heads_of_the_list(parents: list[tuple[int, int]], data: st.DataObject) -> None:
    visible = bytearray(data.draw(st.lists(st.sampled_from((0, 1, 1, 1)), min_size=len(parents),
                                           max_size=len(parents))))
    columns = columns_of(parents)
    assert graph.heads(columns) == graph.heads(parents)
    assert graph.heads(columns, visible) == graph.heads(parents, visible)
    assert graph.heads(columns, bytearray(b"\1" * len(parents))) == graph.heads(parents)


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_graph_walks_answer_the_same_over_the_columns(parents: list[tuple[int, int]], data: st.DataObject) -> None:
    columns = columns_of(parents)
    revs = data.draw(st.lists(st.integers(-1, len(parents) - 1), max_size=4))
    common = data.draw(st.lists(st.integers(-1, len(parents) - 1), max_size=4))
    assert graph.ancestors_mask(columns, revs) == graph.ancestors_mask(parents, revs)
    assert graph.descendants_mask(columns, revs) == graph.descendants_mask(parents, revs)
    assert graph.missing(columns, common, revs) == graph.missing(parents, common, revs)
    roots = {rev: 1 for rev in revs if rev >= 0}
    phases = graph.compute_phases(columns, roots)
    assert phases == graph.compute_phases(parents, roots)
    assert graph.phase_roots(columns, phases) == graph.phase_roots(parents, phases)
    start = data.draw(st.integers(0, len(parents)))
    before = graph.heads(columns[:start])
    assert graph.grown_heads(columns, None, before, start) == set(graph.heads(parents))


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        ParentColumns(array("i", [-1]), array("i"))


def test_the_views_of_a_lazy_changelog_take_its_parent_columns_as_they_are(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No pair a revision is made: the views' parents are the index's two columns (the list of
    tuples they were cost 31 ms and about 120 bytes a revision at 200,000 changesets)."""
    monkeypatch.setattr(revlog, "LAZY_ENTRIES", 8)
    target = tmp_path / "target"
    target.mkdir()
    env = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1"}
    hg = os.path.join(VENV_BIN, "hg")
    subprocess.run([hg, "init"], cwd=target, env=env, check=True)
    subprocess.run([hg, "debugbuilddag", "-q", "+10:a @stable +5 <a +3 /a"], cwd=target, env=env, check=True)
    repo = open_repository(str(target), "t")
    cl = repo.changelog()
    views = repo.views(cl)
    assert cl.index.lazy and isinstance(views.parents, ParentColumns)
    assert (views.parents.p1, views.parents.p2) == cl.index.parent_columns()
    assert views.parents.p1 is cl.index.parent_columns()[0] and views.parents.p2 is cl.index.parent_columns()[1]
    assert list(views.parents) == [cl.parent_revs(rev) for rev in range(len(cl))]
    assert graph.heads(views.parents, views.visible) == [14, 18]


@settings(max_examples=300, deadline=None)
@given(dags(), st.data())
def test_childless_revisions_are_those_no_earlier_revision_has_as_a_parent(
        parents: list[tuple[int, int]], data: st.DataObject) -> None:
    stop = data.draw(st.integers(0, len(parents)))
    revs = sorted(set(data.draw(st.lists(st.integers(0, max(stop - 1, 0)), max_size=8)))) if stop else []
    below = {p for rev in range(stop) for p in parents[rev]}
    assert columns_of(parents).childless(revs, stop) == [rev for rev in revs if rev not in below]
    assert columns_of(parents).childless(graph.heads(parents[:stop]), stop) == graph.heads(parents[:stop])


@settings(max_examples=300, deadline=None)
@given(dags(), st.data())
def test_children_are_the_revisions_that_have_it_as_a_parent(parents: list[tuple[int, int]],
                                                              data: st.DataObject) -> None:
    if parents:
        rev = data.draw(st.integers(0, len(parents) - 1))
        assert columns_of(parents).children(rev) == [child for child, pair in enumerate(parents) if rev in pair]


def test_a_walk_over_the_columns_makes_no_pair_a_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walks index the two columns (a tuple made a revision cost three times the walk)."""
    count = 1000
    columns = ParentColumns(array("i", range(-1, count - 1)), array("i", [-1]) * count)
    monkeypatch.setattr(ParentColumns, "__getitem__", lambda self, rev: pytest.fail("a pair made"))
    monkeypatch.setattr(ParentColumns, "__iter__", lambda self: pytest.fail("a pair made"))
    assert graph.ancestors_mask(columns, [count - 1]) == bytearray(b"\1" * count)
    assert graph.descendants_mask(columns, [0]) == bytearray(b"\1" * count)
    assert graph.missing(columns, [10], [count - 1]) == list(range(11, count))
    assert graph.compute_phases(columns, {5: 1}) == bytearray(5) + bytearray(b"\1" * (count - 5))
    assert graph.heads(columns) == [count - 1]
