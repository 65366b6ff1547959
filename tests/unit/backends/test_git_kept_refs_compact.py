"""``git_pack.KeptRefs``: what a v0 upload-pack connection keeps of its advertised refs until its
wants arrive, in place of the ``RefSnapshot`` dicts (45-50 MB each for a mirror of 100,000
annotated tags).  Checked against the dicts it replaces: the same refs, peeled tags and symrefs,
in the same order, one kept form for connections that saw the same refs."""

from __future__ import annotations

import gc

from hypothesis import given
from hypothesis import strategies as st

from backends import git_pack
from backends.interfaces import ObjectId

_NAME = st.binary(min_size=0, max_size=30).filter(lambda n: b"\n" not in n)


def _ids(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size).map(lambda raw: raw.hex().encode())


@st.composite
def snapshots(draw: st.DrawFn) -> git_pack.RefSnapshot:
    size = draw(st.sampled_from([20, 32]))
    refs = draw(st.dictionaries(_NAME, _ids(size), max_size=40))
    tagged = draw(st.lists(st.sampled_from(sorted(refs)), unique=True)) if refs else []
    peeled = {name: draw(_ids(size)) for name in tagged}
    symrefs = draw(st.dictionaries(_NAME, _NAME, max_size=3))
    return git_pack.RefSnapshot(refs, peeled, symrefs)  # type: ignore[arg-type]


@given(snapshots())
def test_the_kept_form_gives_back_the_snapshot_it_replaces(snap: git_pack.RefSnapshot) -> None:
    kept = git_pack.keep_refs(snap)
    assert isinstance(kept, git_pack.KeptRefs)
    back = kept.snapshot()
    assert list(back.refs.items()) == list(snap.refs.items())
    assert list(back.peeled.items()) == list(snap.peeled.items())
    assert back.symrefs == snap.symrefs
    assert kept.held() < 100 + sum(len(n) + len(i) for n, i in snap.refs.items()) + 4 * len(snap.peeled) + sum(
        map(len, snap.peeled.values()))


@given(snapshots(), snapshots())
def test_connections_that_saw_the_same_refs_share_one(one: git_pack.RefSnapshot, other: git_pack.RefSnapshot) -> None:
    kept = git_pack.keep_refs(one)
    again = git_pack.keep_refs(git_pack.RefSnapshot(dict(one.refs), dict(one.peeled), dict(one.symrefs)))
    assert again is kept
    different = git_pack.keep_refs(other)
    same = (list(other.refs.items()), list(other.peeled.items()), other.symrefs) == (
        list(one.refs.items()), list(one.peeled.items()), one.symrefs)
    assert (different is kept) == same


def test_a_kept_form_no_connection_holds_is_let_go() -> None:
    snap = git_pack.RefSnapshot({b"refs/heads/gone-once-dropped": ObjectId(b"1" * 40)}, {}, {})
    kept = git_pack.keep_refs(snap)
    digest = kept.digest  # type: ignore[union-attr]
    del kept
    gc.collect()
    assert digest not in git_pack._KEPT_REFS


def test_refs_the_compact_form_cannot_carry_are_kept_as_they_are() -> None:
    a, b = ObjectId(b"a" * 40), ObjectId(b"b" * 64)
    for snap in (git_pack.RefSnapshot({b"refs/heads/x": ObjectId(b"A" * 40)}, {}, {}),  # not lowercase
                 git_pack.RefSnapshot({b"refs/heads/x": a, b"refs/heads/y": b}, {}, {}),  # two lengths
                 git_pack.RefSnapshot({b"refs/heads/x\ny": a}, {}, {}),  # a newline in a name
                 git_pack.RefSnapshot({b"refs/heads/x": a}, {b"refs/tags/none": a}, {}),  # a peeled value of no ref
                 git_pack.RefSnapshot({b"refs/heads/x": a}, {b"refs/heads/x": b}, {})):  # of another length
        assert git_pack.keep_refs(snap) is snap
