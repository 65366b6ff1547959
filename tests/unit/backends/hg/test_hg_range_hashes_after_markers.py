"""hg-evolve's range hashes kept across a change of markers (``RangeHashes.use_store``): a push's
new markers used to forget every hash, and the next ``evoext_obshashrange_v1`` hashed the whole
history again (200,000 changesets: 0.75 s of server CPU a push); only the ranges holding a changeset
whose relevant markers changed are forgotten now.  Random sequences of markers (amends, prunes,
splits, rebase-like chains, markers about changesets the repository lacks or gets later, markers
deleted, the store read again), each step's kept hashes compared with hashes computed afresh."""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

import pytest

from backends.hg import open_for_reading, stablerange
from backends.hg.obsstore import ObsStore
from backends.hg.stablerange import NULL_HASH, RangeHashes
from protocols import hg_obsmarkers as obs
from protocols.hg_obsmarkers import Marker
from tests.unit.backends.hg.test_hg_kept_parsed_budget import _store
from tests.unit.backends.hg.test_hg_stable_ranges import _history, _node


def _unknown(rng: random.Random) -> bytes:
    return hashlib.sha1(b"unknown %d" % rng.randrange(12)).digest()


def _marker(rng: random.Random, prec: bytes, succs: tuple[bytes, ...], parents: tuple[bytes, ...] | None) -> Marker:
    succs = tuple(s for s in succs if s != prec)
    return Marker(prec, succs, 0, ((b"user", b"t"),), (float(rng.randrange(1000)), 0), parents)


def _new_markers(rng: random.Random, parents: list[tuple[int, int]], total: int) -> list[Marker]:
    """One step's markers: about the ``total`` revisions the history will have, some not there yet,
    and about changesets it never has."""
    def node(unknown: float = 0.15) -> bytes:
        return _unknown(rng) if rng.random() < unknown else _node(rng.randrange(total))

    def recorded(prec: bytes) -> tuple[bytes, ...] | None:
        rev = next((r for r in range(total) if _node(r) == prec), None)
        if rev is None or rng.random() < 0.2:
            return None
        return tuple(_node(p) for p in parents[rev] if p >= 0)

    roll = rng.random()
    if roll < 0.35:  # amend
        prec = node()
        return [_marker(rng, prec, (node(),), recorded(prec))]  # (a marker making its own successor is left out)
    if roll < 0.55:  # prune
        prec = node(0.1)
        return [_marker(rng, prec, (), recorded(prec) if rng.random() < 0.8 else (node(),))]
    if roll < 0.65:  # split
        return [_marker(rng, node(), (node(), node()), None)]
    if roll < 0.85:  # rebase-like: a chain of rewrites, some through changesets the repository lacks
        chain = [node(0.4) for _ in range(rng.randrange(2, 5))]
        return [_marker(rng, a, (b,), None) for a, b in itertools.pairwise(chain)]
    return [_marker(rng, _unknown(rng), (_unknown(rng),), None), _marker(rng, _unknown(rng), (node(0),), None)]


def _asked(rng: random.Random, ranges: RangeHashes, count: int) -> list[tuple[int, int]]:
    """Ranges a client's discovery asks: whole histories of some heads, and subranges down from them."""
    asked = []
    for _ in range(3):
        current = (rng.randrange(count), 0)
        asked.append(current)
        while ranges.length(current) > 1 and rng.random() < 0.85:
            current = rng.choice(ranges.subranges(current))
            asked.append(current)
    return asked


def _check(kept: RangeHashes, parents: list[tuple[int, int]], count: int, store: ObsStore | None,
           asked: list[tuple[int, int]]) -> None:
    fresh = RangeHashes(parents[:count], _node, store.relevant if store is not None else lambda nodes: [])
    for rangeid in asked:
        assert kept.obshash(rangeid) == fresh.obshash(rangeid), rangeid
    for rangeid, value in list(kept._hashes.items()):  # every hash it kept, not only those asked again
        assert value == fresh.obshash(rangeid), rangeid


@pytest.mark.parametrize("seed", range(12))
def test_kept_range_hashes_equal_fresh_ones_after_each_change_of_markers(seed: int,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if seed % 4 == 3:  # past the limit, every hash is forgotten (a few markers here)
        monkeypatch.setattr(stablerange, "FORGET_LIMIT", 3)
    rng = random.Random(seed)
    total = 160
    parents = _history(seed, total)
    count = 100
    rev_of = {_node(r): r for r in range(count)}
    kept = RangeHashes(parents[:count], _node, lambda nodes: [])
    markers: list[Marker] = []
    store: ObsStore | None = None
    forgot_some = 0
    for _step in range(40):
        roll = rng.random()
        if roll < 0.6 or not markers:  # a push's markers, appended
            fresh = _new_markers(rng, parents, total)
            if rng.random() < 0.2 and markers:
                fresh.append(rng.choice(markers))  # (one the store has: a duplicate)
            store = store.extended(store.new(fresh)) if store is not None else ObsStore(1, fresh)
            markers = store.markers
        elif roll < 0.75:  # hg debugobsolete --delete
            gone = set(rng.sample(range(len(markers)), rng.randrange(1, min(4, len(markers)) + 1)))
            markers = [m for i, m in enumerate(markers) if i not in gone]
            store = ObsStore(1, markers) if markers else None
        elif roll < 0.85:  # the store read again, the same markers (no hash is to go)
            assert store is not None
            store = ObsStore.parse(b"".join(obs.encode(markers, 1)))
            before = dict(kept._hashes)
            kept.use_store(store, rev_of.get)
            assert kept._hashes == before
        elif count < total:  # the changelog grows (changesets some markers named already)
            count = min(total, count + rng.randrange(1, 12))
            kept.rebind(parents[:count], _node)
            rev_of = {_node(r): r for r in range(count)}
        held = len(kept._hashes)
        kept.use_store(store, rev_of.get)
        if 0 < len(kept._hashes) < held:
            forgot_some += 1
        _check(kept, parents, count, store, _asked(rng, kept, count))
    assert forgot_some  # (hashes were forgotten in part, not always all or none)


def test_an_amend_forgets_the_ranges_holding_what_it_touches_alone() -> None:
    parents = [(r - 1, -1) for r in range(400)]
    calls: list[bytes] = []

    class Counted(ObsStore):
        def relevant(self, nodes: object) -> list[Marker]:
            found = list(nodes)  # type: ignore[call-overload]
            calls.extend(found)
            return super().relevant(found)

    rng = random.Random(5)
    first = [_marker(rng, _unknown(rng), (_node(r),), None) for r in [*range(0, 400, 7), 399]]
    store = Counted(1, first)
    kept = RangeHashes(parents, _node, lambda nodes: [])
    rev_of = {_node(r): r for r in range(400)}.get
    kept.use_store(store, rev_of)
    whole = kept.obshash((399, 0))
    assert whole != NULL_HASH and len(calls) == 400
    del calls[:]
    grown = Counted(1, [*first, _marker(rng, _node(390), (_node(398),), None)])
    kept.use_store(grown, rev_of)
    again = kept.obshash((399, 0))
    assert calls == [_node(398)]  # (every revision's markers were looked up again: 400)
    assert again == RangeHashes(parents, _node, grown.relevant).obshash((399, 0)) != whole


def test_a_push_of_markers_rehashes_the_changesets_it_touches(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the repository: the obsstore file appended to, then read again by the next open."""
    changesets = 3000
    path = _store(tmp_path, 0, changesets=changesets)
    repo = open_for_reading(path, "r")
    cl = repo.changelog()
    nodes = [cl.node(r) for r in range(changesets)]  # (all: one without a marker among others may weigh nothing)
    rng = random.Random(1)
    markers = [_marker(rng, hashlib.sha1(n).digest(), (n,), None) for n in nodes]
    obsstore = Path(path) / ".hg" / "store" / "obsstore"
    obsstore.write_bytes(b"".join(obs.encode(markers, 1)))
    tip = cl.node(changesets - 1)
    repo = open_for_reading(path, "r")
    first = repo.obsmarker_range_hashes([(tip, 0)])
    asked: list[bytes] = []
    relevant = ObsStore.relevant

    def counted(self: ObsStore, found: list[bytes]) -> list[Marker]:
        asked.extend(found)
        return relevant(self, found)

    monkeypatch.setattr(ObsStore, "relevant", counted)
    amended = cl.node(1235)
    with obsstore.open("ab") as f:
        f.write(b"".join(obs.encode([_marker(rng, amended, (), None)], 1, header=False)))  # (a prune)
    repo = open_for_reading(path, "r")
    second = repo.obsmarker_range_hashes([(tip, 0)])
    monkeypatch.undo()
    assert second != first
    fresh = RangeHashes(repo.views().parents, cl.node, ObsStore.parse(obsstore.read_bytes()).relevant)
    assert second == [fresh.obshash((changesets - 1, 0))]
    assert asked == [amended]  # (every changeset's markers were looked up again: 3,000)
    obsstore.write_bytes(b"".join(obs.encode(markers, 1)))  # hg debugobsolete --delete of it
    repo = open_for_reading(path, "r")
    assert repo.obsmarker_range_hashes([(tip, 0)]) == first
