"""The views brought up to date after pushes (``HgRepo._extended_views``) when, between the pushes,
the server's own hg changes what they were computed with: ``hg phase --force`` (any root, backwards
too), ``hg debugobsolete --delete`` (the obsstore rewritten, shorter or as long), local tags,
``hg update`` (the working directory's parent) and bookmarks written by hand; prune markers with
parents.  Each step's views are compared with views computed afresh by another open."""

from __future__ import annotations

import os
import random

import pytest

from backends.hg import create_repository
from backends.hg.memory import MemoryHgRepository
from backends.hg.obsstore import ARCHIVED, DRAFT, OBSSTORE, SECRET
from backends.hg.repository import PHASEROOTS, HgRepo
from backends.interfaces import DeltaMode, Node
from protocols import hg_obsmarkers as obs
from protocols.hg_obsmarkers import Marker
from tests.unit.backends.hg.test_hg_views_extended_with_markers import EVOLUTION, _compare, _history

INTERNAL = 96


def _server_change(rng: random.Random, target: HgRepo) -> None:
    """One thing the server's own hg does to the files between two requests."""
    cl = target.changelog()
    have = [cl.node(r) for r in range(len(cl))]
    if not have:
        return
    what = rng.randrange(5)
    if what == 0:  # hg phase --force: the roots rewritten (some moved backwards)
        roots = [b"%d %s\n" % (rng.choice((DRAFT, DRAFT, SECRET, ARCHIVED, INTERNAL)), rng.choice(have).hex().encode())
                 for _ in range(rng.randint(0, 3))]
        if target.store.exists(PHASEROOTS) and rng.random() < 0.5:
            old = target.store.read(PHASEROOTS).splitlines(keepends=True)
            roots.extend(rng.sample(old, rng.randint(0, len(old))))
        target.store.replace(PHASEROOTS, b"".join(roots))
    elif what == 1:  # hg debugobsolete --delete
        store = target.obsstore()
        if store is None or not store.markers:
            return
        kept = [m for m in store.markers if rng.random() < 0.7]
        if rng.random() < 0.5:  # then another marker, so that the file is as long or longer
            kept.append(Marker(rng.choice(have), (rng.choice(have),), 0, (), (99.0, 0), None))
            kept = [m for m in kept if m.prec not in m.succs]
        target.store.replace(OBSSTORE, b"".join(obs.encode(kept, store.version)))
    elif what == 2:  # a local tag
        target.plain.replace(b"localtags", b"%s t%d\n" % (rng.choice(have).hex().encode(), rng.randint(0, 1)))
    elif what == 3:  # hg update: the working directory's parent
        node = rng.choice(have) if rng.random() < 0.8 else b"\0" * 20
        target.plain.replace(b"dirstate", node + b"\0" * 20)
    else:  # a bookmark moved or deleted by hand
        marks = b"".join(b"%s b%d\n" % (rng.choice(have).hex().encode(), i) for i in range(rng.randint(0, 2)))
        target.bookmarks_vfs().replace(b"bookmarks", marks)


def _push(rng: random.Random, target: HgRepo, source: HgRepo, nodes: list[Node], step: int) -> None:
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
                succs = tuple(rng.sample(nodes, rng.choice((0, 1, 1, 2))))
                parents = None
                if not succs and rng.random() < 0.5:  # a prune recording its parents
                    parents = (rng.choice(nodes),)
                if prec not in succs:
                    markers.append(Marker(prec, succs, 0, (), (float(step), 0), parents))
            tx.add_obsmarkers(markers)  # type: ignore[attr-defined]
        known = [n for n in nodes if tx.phase_of(n) is not None]  # type: ignore[attr-defined]
        if known and rng.random() < 0.25:
            tx.set_phase(rng.choice((0, DRAFT, SECRET, ARCHIVED)), [rng.choice(known)])
        tx.commit()
    except BaseException:
        tx.abort()
        raise


def _run(seed: int, target: HgRepo) -> None:
    rng = random.Random(seed)
    builder, nodes = _history(rng, 20)
    source = MemoryHgRepository("s")
    tx = source.transaction()
    tx.add_changegroup(builder.groups())
    tx.commit()
    target.plain.replace(b"hgrc", EVOLUTION + b"[phases]\npublish = False\n")
    for step in range(16):
        if rng.random() < 0.7:
            target.heads()
            target.branchmap()
        if rng.random() < 0.5:
            _server_change(rng, target)
            _compare(target)
        _push(rng, target, source, nodes, step)
        _compare(target)


@pytest.mark.parametrize("seed", range(60))
def test_views_after_server_changes_in_memory_are_those_computed_afresh(seed: int) -> None:
    _run(seed, MemoryHgRepository("t"))


@pytest.mark.parametrize("seed", range(300, 312))
def test_views_after_server_changes_on_disk_are_those_computed_afresh(seed: int, tmp_path: object) -> None:
    _run(seed, create_repository(os.path.join(str(tmp_path), "t"), "t"))
