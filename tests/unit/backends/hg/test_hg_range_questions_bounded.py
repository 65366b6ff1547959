"""What one ``evoext_obshashrange_v1`` request may make the server compute and keep.

A client's discovery asks about the whole history of common heads (index 0), then only about the
subranges of ranges it asked before, down to single changesets.  A range of any other index cost
a walk of its head's history and stayed in the kept ranges: 200 made-up indexes of one head of
100,000 changesets took 3.6 s of CPU, each request, and the kept structure grew with each; such
ranges are now answered all-ff (as a head the server lacks), with nothing walked or kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from backends.hg import open_for_reading, stablerange
from backends.interfaces import Node
from protocols import hg_obsmarkers as obs
from protocols.errors import LimitExceeded
from protocols.hg_commands import Args, dispatch
from tests.unit.backends.hg.test_hg_kept_parsed_budget import _store
from tests.unit.protocols.hg.test_hg_commands import ctx

CHANGESETS = 4000
MAX_STABLE_RANGES = 1000  # (protocols.hg_commands.MAX_STABLE_RANGES)


def _marked(tmp_path: Path) -> tuple[str, list[Node]]:
    path = _store(tmp_path, 0, changesets=CHANGESETS)
    cl = open_for_reading(path, "r").changelog()
    nodes = [Node(cl.node(r)) for r in range(CHANGESETS)]
    markers = [obs.Marker(hashlib.sha1(n).digest(), (n,), 0, (), (0.0, 0), None) for n in nodes[::3]]
    (Path(path) / ".hg" / "store" / "obsstore").write_bytes(b"".join(obs.encode(markers, 1)))
    return path, nodes


def _independent(path: str) -> stablerange.RangeHashes:
    """The same ranges and hashes, computed apart from the repository's kept ones."""
    repo = open_for_reading(path, "r")
    cl = repo.changelog()
    store = repo.obsstore()
    assert store is not None
    return stablerange.RangeHashes(repo.views(cl).parents, cl.node, store.relevant)


def test_made_up_indexes_are_answered_unknown_without_being_walked_or_kept(tmp_path: Path) -> None:
    path, nodes = _marked(tmp_path)
    repo = open_for_reading(path, "r")
    tip = nodes[-1]
    whole = repo.obsmarker_range_hashes([(tip, 0)])
    assert whole[0] not in (stablerange.NULL_HASH, stablerange.UNKNOWN_HASH)
    kept = repo._kept_range_hashes
    assert kept is not None
    weight = kept.weight()

    made_up = [(tip, i) for i in range(1, 400, 2)]  # none a subrange of (tip, 0), nor one revision
    assert repo.obsmarker_range_hashes(made_up) == [stablerange.UNKNOWN_HASH] * len(made_up)
    assert kept.weight() == weight  # nothing walked nor kept for them

    # what a client asks is still answered: the whole, its subranges, one revision, a head again
    reference = _independent(path)
    subs = reference.subranges((CHANGESETS - 1, 0))
    asked = [(nodes[rev], index) for rev, index in subs] + [(nodes[5], 5), (tip, 0)]
    expected = [reference.obshash(r) for r in subs] + [reference.obshash((5, 5)), whole[0]]
    assert repo.obsmarker_range_hashes(asked) == expected


def test_a_subrange_asked_before_its_range_in_one_request_is_answered(tmp_path: Path) -> None:
    path, nodes = _marked(tmp_path)
    reference = _independent(path)
    top = (CHANGESETS - 1, 0)
    deeper = reference.subranges(reference.subranges(top)[-1])[0]
    assert deeper[1] > 0 and reference.length(deeper) > 1
    repo = open_for_reading(path, "r")
    got = repo.obsmarker_range_hashes([(nodes[deeper[0]], deeper[1]), (nodes[top[0]], 0)])
    assert got == [reference.obshash(deeper), reference.obshash(top)]
    assert got[0] != stablerange.UNKNOWN_HASH


def test_more_ranges_than_the_bound_in_one_request_are_refused(tmp_path: Path) -> None:
    ranges = b" ".join((b"\x01" * 20 + i.to_bytes(4, "big")).hex().encode() for i in range(MAX_STABLE_RANGES + 1))

    class Repo:
        def obsmarker_discovery_caps(self) -> tuple[bytes, ...]:
            return (b"_evoext_getbundle_obscommon", b"_evoext_obshashrange_v1")

        def obsmarker_range_hashes(self, asked: list[tuple[bytes, int]]) -> list[bytes]:
            return [stablerange.UNKNOWN_HASH] * len(asked)

    with pytest.raises(LimitExceeded, match=r"at most 1000 ranges at a time .*ask about fewer"):
        dispatch(Repo(), b"evoext_obshashrange_v1", Args({b"ranges": ranges}), ctx())  # type: ignore[arg-type]
    fewer = b" ".join(ranges.split(b" ")[:MAX_STABLE_RANGES])
    answer = dispatch(Repo(), b"evoext_obshashrange_v1", Args({b"ranges": fewer}), ctx())  # type: ignore[arg-type]
    assert answer.data.count(b" ") == MAX_STABLE_RANGES - 1  # type: ignore[union-attr]


def test_a_subrange_asked_of_a_server_that_kept_nothing_is_answered(tmp_path: Path) -> None:
    """A client's next question, the ranges its previous one computed let go of (the kept budget,
    a restart): a subrange of its head's own history is computed again and answered."""
    path, nodes = _marked(tmp_path)
    reference = _independent(path)
    top = (CHANGESETS - 1, 0)
    deeper = reference.subranges(reference.subranges(top)[-1])
    repo = open_for_reading(path, "r")
    asked = [(nodes[rev], index) for rev, index in deeper]
    assert all(index > 0 for _node, index in asked[1:])
    assert repo.obsmarker_range_hashes(asked) == [reference.obshash(r) for r in deeper]


def test_the_subranges_of_a_head_walk_only_above_the_cut_where_it_is_on_the_spine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each head asked about for the first time has its range sliced: the part below the cut was
    walked revision by revision (200 heads of a 30,000-changeset history: 1.07 s of server CPU
    each request), where it is that revision's own history whenever the walk reaches it on its
    spine (not through a merge's other parent): one subrange, found without walking it."""
    count = 10_000
    parents = [(r - 1, -1) for r in range(count)]
    parents[5000] = (4999, 4000)  # a merge of its own history: nothing brought
    hashes = stablerange.RangeHashes(parents, lambda r: hashlib.sha1(b"%d" % r).digest(), lambda n: [])
    hashes.depth(count - 1)
    walked = 0
    own = hashes._own_parents

    def counting(rev: int) -> tuple[int, ...]:
        nonlocal walked
        walked += 1
        return own(rev)

    monkeypatch.setattr(hashes, "_own_parents", counting)
    subs = hashes.subranges((count - 1, 0))
    assert subs == [(8191, 0), (count - 1, 8192)]
    assert walked <= count - 8192 + 2, walked  # (the walk above the cut, not the 8,192 below)
