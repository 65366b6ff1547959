"""hg-evolve's stable ranges (``backends.hg.stablerange``): the DAG computations against their plain
definitions on a random history of branches and merges, and what is kept between questions.  That
the hashes are hg-evolve's own is checked against its client in
``tests/integration/test_hg_evolve_obsdiscovery.py``."""

from __future__ import annotations

import hashlib
import random

from backends.hg.stablerange import NULL_HASH, RangeHashes
from protocols import hg_obsmarkers as obs


def _history(seed: int, count: int) -> list[tuple[int, int]]:
    """Parents of ``count`` revisions: runs, branches, merges (some of a parent and its own
    ancestor), a second root, and a revision whose only parent is its second."""
    pick = random.Random(seed)
    parents = [(-1, -1)]
    for rev in range(1, count):
        roll = pick.random()
        if roll < 0.15:
            parents.append((pick.randrange(rev), pick.randrange(rev)))
        elif roll < 0.3:
            parents.append((pick.randrange(rev), -1))
        elif roll < 0.32:
            parents.append((-1, -1))
        elif roll < 0.34:
            parents.append((-1, rev - 1))
        else:
            parents.append((rev - 1, -1))
    return parents


def _ancestors(parents: list[tuple[int, int]]) -> list[set[int]]:
    found: list[set[int]] = []
    for rev, ps in enumerate(parents):
        mine = {rev}
        for p in ps:
            if p >= 0:
                mine |= found[p]
        found.append(mine)
    return found


def _node(rev: int) -> bytes:
    return hashlib.sha1(b"%d" % rev).digest()


def test_depths_and_only_are_their_definitions() -> None:
    parents = _history(5, 160)
    ancestors = _ancestors(parents)
    ranges = RangeHashes(parents, _node, lambda nodes: [])
    assert [ranges.depth(r) for r in range(len(parents))] == [len(a) for a in ancestors]
    pick = random.Random(1)
    for _ in range(400):
        a, b = pick.randrange(len(parents)), pick.randrange(len(parents))
        assert ranges._only(a, b) == sorted(ancestors[a] - ancestors[b], reverse=True)


def test_the_stable_sort_lists_each_ancestor_once_parents_first_and_ranges_cover_it() -> None:
    parents = _history(9, 140)
    ancestors = _ancestors(parents)
    ranges = RangeHashes(parents, _node, lambda nodes: [])
    for head in range(len(parents)):
        order = list(ranges.walk_down(head))[::-1]
        assert sorted(order) == sorted(ancestors[head])
        place = {rev: i for i, rev in enumerate(order)}
        assert all(place[p] < place[rev] for rev in order for p in parents[rev] if p >= 0)
        # a range's subranges are its revisions, in order
        todo = [(head, 0)]
        while todo:
            rangeid = todo.pop()
            subs = ranges.subranges(rangeid)
            if ranges.length(rangeid) == 1:
                assert subs == []
                continue
            covered = [rev for sub in subs for rev in list(ranges.walk_down(sub[0]))[::-1][sub[1]:]]
            assert covered == list(ranges.walk_down(rangeid[0]))[::-1][rangeid[1]:]
            todo.extend(subs)


def test_a_range_whose_last_part_has_no_markers_and_one_other_part_has_some_hashes_null() -> None:
    """As hg-evolve computes it: one non-null subrange hash is taken as the range's only when it is
    the last subrange's; otherwise the range hashes null."""
    parents = [(-1, -1), (0, -1), (1, -1)]
    marker = obs.Marker(b"\1" * 20, (_node(0),), 0, (), (0.0, 0), None)
    ranges = RangeHashes(parents, _node, lambda nodes: [marker] if _node(0) in nodes else [])
    assert ranges.obshash((0, 0)) != NULL_HASH
    assert ranges.subranges((2, 0)) == [(1, 0), (2, 2)]
    assert ranges.subranges((1, 0)) == [(0, 0), (1, 1)]
    assert ranges.obshash((1, 0)) == ranges.obshash((2, 0)) == NULL_HASH
    on_top = RangeHashes(parents, _node, lambda nodes: [marker] if _node(2) in nodes else [])
    assert on_top.obshash((2, 0)) == on_top.obshash((2, 2)) != NULL_HASH


def test_other_markers_keep_the_ranges_and_forget_the_hashes() -> None:
    parents = _history(3, 60)
    asked: list[bytes] = []

    def none(nodes: list[bytes]) -> list[obs.Marker]:
        asked.extend(nodes)
        return []

    marker = obs.Marker(b"\1" * 20, (_node(59),), 0, (), (0.0, 0), None)

    def some(nodes: list[bytes]) -> list[obs.Marker]:
        return [marker] if _node(59) in nodes else []

    ranges = RangeHashes(parents, _node, none)
    assert ranges.obshash((59, 0)) == NULL_HASH
    subs = dict(ranges._subranges)
    count = len(asked)
    ranges.use_markers(none)
    assert ranges.obshash((59, 0)) == NULL_HASH and len(asked) == count  # the same markers: kept
    ranges.use_markers(some)
    assert ranges.obshash((59, 0)) != NULL_HASH
    assert ranges._subranges == subs  # the ranges were not sliced again
    grown = [*parents, (59, -1)]
    ranges.rebind(grown, _node)
    assert ranges.depth(60) == ranges.depth(59) + 1 and ranges.known() == 61
