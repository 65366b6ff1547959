"""The views after a push into a repository with an obsstore are brought up to date from the old
ones (``HgRepo._extended_views``), not computed over the whole history: random sequences of pushes
of changesets, obsolescence markers (some about changesets that arrive later, or never), phase moves
and bookmarks (pins) into one repository, each step's views compared with views computed afresh and
with hg's rule for what is hidden, written out plainly here."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from backends.hg import create_repository, repository
from backends.hg.memory import MemoryHgRepository
from backends.hg.obsstore import ARCHIVED, DRAFT, PUBLIC, SECRET
from backends.hg.repository import HgRepo, ThreadLocks, Views
from backends.interfaces import NULL_NODE, DeltaMode, Node
from bench.hg_storage_micro import HistoryBuilder
from protocols.hg_obsmarkers import Marker

EVOLUTION = b"[experimental]\nevolution = all\n"


def _history(rng: random.Random, count: int) -> tuple[HistoryBuilder, list[Node]]:
    """A random history of ``count`` changesets: forks, merges, two named branches, a closed head."""
    builder = HistoryBuilder()
    nodes: list[Node] = []
    branch_of: dict[Node, bytes] = {}
    for i in range(count):
        p1 = rng.choice(nodes) if nodes else NULL_NODE
        p2 = NULL_NODE
        if len(nodes) > 2 and rng.random() < 0.15:
            p2 = rng.choice([n for n in nodes if n != p1])
        branch = branch_of.get(p1, b"default")
        if rng.random() < 0.15:
            branch = b"stable" if branch == b"default" else b"default"
        node = builder.commit({b"f%d" % i: b"%d\n" % i}, p1, p2, branch=branch, close=rng.random() < 0.05)
        nodes.append(node)
        branch_of[node] = branch
    return builder, nodes


def _ancestors(source: HgRepo, heads: list[Node]) -> set[Node]:
    cl = source.changelog()
    seen: set[int] = set()
    stack = [cl.rev(h) for h in heads]
    while stack:
        rev = stack.pop()
        if rev >= 0 and rev not in seen:
            seen.add(rev)
            stack.extend(source.views(cl).parents[rev])
    return {cl.node(r) for r in seen}


def _plain_hidden(repo: HgRepo, views: Views) -> set[int]:
    """hg's rule, as it reads: a hideable revision (draft or secret and rewritten or pruned by a
    marker, or archived) that nothing pins is hidden unless a revision descending from it is not."""
    cl = repo.changelog()
    store = repo.obsstore()
    if store is None:
        return set()
    pinned = repo.pinned_revs()
    hideable = {rev for rev in range(len(cl)) if rev not in pinned and (
        views.phases[rev] >= ARCHIVED or (views.phases[rev] in (DRAFT, SECRET) and cl.node(rev) in store.successors))}
    descendants: dict[int, set[int]] = {rev: set() for rev in range(len(cl))}
    for rev in range(len(cl) - 1, -1, -1):
        for p in views.parents[rev]:
            if p >= 0:
                descendants[p] |= descendants[rev] | {rev}
    return {rev for rev in hideable if descendants[rev] <= hideable}


def _compare(target: HgRepo) -> None:
    """The target's views (extended) against views computed afresh by another open of its files."""
    fresh = HgRepo("fresh", target.store, target.plain, target.requirements(), ThreadLocks())
    cl, fcl = target.changelog(), fresh.changelog()
    mine, theirs = target.views(cl), fresh.views(fcl)
    assert mine.phases == theirs.phases
    assert mine.visible == theirs.visible
    assert mine.parents == theirs.parents
    assert target.head_revs(mine) == fresh.head_revs(theirs)
    assert list(target._branch_head_revs(cl, mine).items()) == list(fresh._branch_head_revs(fcl, theirs).items())
    hidden = {r for r in range(len(cl)) if mine.phases[r] < 2 and not mine.visible[r]}
    assert hidden == {r for r in _plain_hidden(fresh, theirs) if mine.phases[r] < 2}
    mine_hiding, their_hiding = getattr(mine, "_hiding", None), getattr(theirs, "_hiding", None)
    assert (mine_hiding is None) == (their_hiding is None)
    if mine_hiding is not None and their_hiding is not None:
        assert list(mine_hiding.markers) == list(their_hiding.markers)
        for field in ("obsolete", "archived", "pinned", "hidden"):
            assert getattr(mine_hiding, field) == getattr(their_hiding, field), field
        assert set(mine_hiding.hidden) == _plain_hidden(fresh, theirs)


def _steps(rng: random.Random, target: HgRepo, source: HgRepo, nodes: list[Node], count: int) -> Iterator[None]:
    for step in range(count):
        if rng.random() < 0.7:  # what a server answers before a push: the old heads are known
            target.heads()
            target.branchmap()
        cl = target.changelog()
        have = {cl.node(r) for r in range(len(cl))}
        tx = target.transaction()
        try:
            if rng.random() < 0.6 or not have:
                heads = rng.sample(nodes, rng.randint(1, 2))
                missing = [n for n in source.missing([], heads) if n not in have]
                if missing:
                    tx.add_changegroup(source.emit_groups(missing, DeltaMode.ANY))
            if rng.random() < 0.6:
                markers = []
                for _ in range(rng.randint(1, 3)):
                    prec = rng.choice(nodes) if rng.random() < 0.9 else rng.randbytes(20)
                    succs = tuple(rng.sample(nodes, rng.choice((0, 1, 1, 1, 2))))
                    if prec not in succs:
                        markers.append(Marker(prec, succs, 0, (), (float(step), 0), None))
                tx.add_obsmarkers(markers)  # type: ignore[attr-defined]
            known = [n for n in nodes if tx.phase_of(n) is not None]  # type: ignore[attr-defined]
            if known and rng.random() < 0.25:
                tx.set_phase(rng.choice((PUBLIC, DRAFT, SECRET, SECRET, ARCHIVED)), [rng.choice(known)])
            if known and rng.random() < 0.25:
                name = b"b%d" % rng.randint(0, 2)
                old = target.stored_bookmarks().get(name)
                tx.set_bookmark(name, old, rng.choice([*known, None]))
            tx.commit()
        except BaseException:
            tx.abort()
            raise
        yield None


def _run(seed: int, target: HgRepo, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    rng = random.Random(seed)
    builder, nodes = _history(rng, 24)
    source = MemoryHgRepository("s")
    tx = source.transaction()
    tx.add_changegroup(builder.groups())
    tx.commit()
    hgrc = EVOLUTION + (b"" if rng.random() < 0.25 else b"[phases]\npublish = False\n")
    target.plain.replace(b"hgrc", hgrc)
    outcomes: list[bool] = []
    real = HgRepo._extended_views

    def counted(self: HgRepo, old: Views, *args: object) -> Views | None:
        found = real(self, old, *args)  # type: ignore[arg-type]
        if self is target and len(old.parents):  # (none to extend before the first changesets)
            outcomes.append(found is not None)
        return found

    monkeypatch.setattr(HgRepo, "_extended_views", counted)
    for _ in _steps(rng, target, source, nodes, 14):
        _compare(target)
    monkeypatch.undo()
    return sum(outcomes), len(outcomes)


@pytest.mark.parametrize("seed", range(40))
def test_views_after_pushes_with_markers_in_memory_are_those_computed_afresh(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    extended, asked = _run(seed, MemoryHgRepository("t"), monkeypatch)
    assert asked and extended == asked  # (markers are only appended: nothing is computed afresh)


@pytest.mark.parametrize("seed", range(100, 112))
def test_views_after_pushes_with_markers_on_disk_are_those_computed_afresh(
        seed: int, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.path.join(str(tmp_path), "t")
    extended, asked = _run(seed, create_repository(path, "t"), monkeypatch)
    assert asked and extended == asked


@pytest.mark.parametrize("seed", range(200, 206))
def test_views_past_the_limit_are_computed_afresh_and_the_same(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A push changing what more than ``EXTEND_LIMIT`` revisions hide (here 1) falls back to views
    computed whole; those that do not are still extended."""
    monkeypatch.setattr(repository, "EXTEND_LIMIT", 1)
    extended, asked = _run(seed, MemoryHgRepository("t"), monkeypatch)
    assert 0 < extended < asked
