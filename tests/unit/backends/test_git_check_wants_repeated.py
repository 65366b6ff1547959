"""A want that is no ref's tip, named many times (a hostile client may send a quarter of a million
lines wanting one tree), is looked up in the store once by the check that the server has it: it was
looked up once a line (2.4 s of server CPU for 200,000 lines of a loose tree over git://, where git's
upload-pack takes 0.11 s), the pack's planning having been made to look each up once already."""

from __future__ import annotations

from typing import Any

import pytest
from dulwich.object_store import MemoryObjectStore
from dulwich.objects import Blob, Tree

from backends import git_pack
from backends.interfaces import ObjectId
from protocols.errors import ProtocolError


def test_a_want_named_many_times_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryObjectStore()
    blob = Blob.from_string(b"a\n")
    tree = Tree()
    tree.add(b"a", 0o100644, blob.id)
    store.add_objects([(blob, None), (tree, None)])
    lookups: list[Any] = []
    contains = MemoryObjectStore.__contains__

    def looking(self: MemoryObjectStore, sha: Any) -> bool:
        lookups.append(sha)
        return contains(self, sha)

    monkeypatch.setattr(MemoryObjectStore, "__contains__", looking)
    snapshot = git_pack.RefSnapshot({}, {}, {})
    git_pack.check_wants(store, snapshot, [ObjectId(tree.id)] * 5000 + [ObjectId(blob.id)] * 5000)
    assert len(lookups) == 2
    unknown = ObjectId(b"1" * 40)
    with pytest.raises(ProtocolError, match="not our ref " + "1" * 40):
        git_pack.check_wants(store, snapshot, [ObjectId(tree.id)] * 3 + [unknown] * 3 + [ObjectId(b"2" * 40)])
