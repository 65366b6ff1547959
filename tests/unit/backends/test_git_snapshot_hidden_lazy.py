"""A repository hiding refs (``uploadpack.hideRefs = refs/pull``) has them gathered only for a
deepen that counts their tips (``git_pack.hidden_tips``, ``git fetch --deepen`` with
``uploadpack.allowTipSHA1InWant``), not at each snapshot of its refs: every ``git ls-remote`` of a
mirror hiding 20,000 of its 120,000 refs walked them all again for nobody (5-8 ms of server CPU,
about a tenth of the request's)."""

from __future__ import annotations

from collections.abc import Callable, ItemsView

from dulwich.object_store import MemoryObjectStore
from dulwich.objects import Blob

from backends import git_pack
from backends.interfaces import ObjectId


class _Walked(dict[bytes, ObjectId]):
    walks = 0

    def items(self) -> ItemsView[bytes, ObjectId]:  # type: ignore[override]
        type(self).walks += 1
        return super().items()


class _Repo:
    def __init__(self, refs: dict[bytes, ObjectId], store: MemoryObjectStore) -> None:
        self._refs = refs
        self.object_store = store

    def refs(self) -> dict[bytes, ObjectId]:
        return _Walked(self._refs)

    def symrefs(self) -> dict[bytes, bytes]:
        return {}

    def hidden_refs(self, service: str) -> Callable[[bytes], bool]:
        return lambda name: name.startswith(b"refs/pull/")


def test_a_snapshot_does_not_gather_the_hidden_refs() -> None:
    store = MemoryObjectStore()
    blob = Blob.from_string(b"a\n")
    store.add_object(blob)
    oid = ObjectId(blob.id)
    refs = {b"refs/heads/b%d" % i: oid for i in range(50)} | {b"refs/pull/%d/head" % i: oid for i in range(20)}
    repo = _Repo(refs, store)
    snapshot = git_pack.snapshot_refs(repo)  # type: ignore[arg-type]
    assert set(snapshot.refs) == {name for name in refs if name.startswith(b"refs/heads/")}
    assert _Walked.walks == 0
    assert git_pack.hidden_tips(repo) == {name: oid for name in refs if name.startswith(b"refs/pull/")}  # type: ignore[arg-type]
