"""A kept ``packed-refs`` that does not say ``fully-peeled`` (an old git's ``peeled`` header, or no
``^`` lines at all) has what its refs peel to read once from their objects (``PackedRefs.completed``),
weighed against the kept budget, and is then spliced as a fully-peeled file is; a small one is
peeled by each advertisement, as before."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backends import git as git_backend
from backends import git_pack
from backends.interfaces import ObjectId
from backends.lru import LruCache
from tests.unit.backends.test_git_packed_mirror import A, B, _open, _repo


def _unpeeled(count: int, header: bytes) -> bytes:
    """A file of ``count`` tags ``v<n>``, every tenth's object a tag of ``A`` (with a ``^`` line
    when ``header`` says ``peeled``), and ``main``."""
    lines = [header, A, b" refs/heads/main\n"]
    for i in range(count):
        lines.append(b"%040x refs/tags/v%06d\n" % (i + 1, i))
        if header and not i % 10:
            lines += [b"^", A, b"\n"]
    return b"".join(lines)


@pytest.mark.parametrize("header", [b"# pack-refs with: peeled sorted \n", b""])
def test_what_the_refs_peel_to_is_read_once_and_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        header: bytes) -> None:
    monkeypatch.setattr(git_backend, "_PACKED_REFS", LruCache(git_backend.MAX_PACKED_REFS_KEPT, git_backend._packed_cost))
    peeled: list[bytes] = []

    def peel(store: object, oid: ObjectId, types: object = None, rests: object = None) -> ObjectId:
        peeled.append(oid)
        return ObjectId(A) if int(oid, 16) % 10 == 1 else oid  # (v000000, v000010, ...: tags of A)

    monkeypatch.setattr(git_pack, "peel", peel)
    git_dir = _repo(tmp_path, _unpeeled(2_000, header))
    for _ in range(3):
        repo = _open(git_dir)
        snapshot = git_pack.snapshot_refs(repo)
        repo.close()
        assert snapshot.run is not None
        assert snapshot.peeled == {b"refs/tags/v%06d" % i: A for i in range(0, 2_000, 10)}
    tags_peeled = [oid for oid in peeled if oid != A]  # (HEAD, a loose ref, is peeled by each one)
    assert len(tags_peeled) == (2_000 if not header else 2_000 - 200)  # once: the refs without a ^ line
    kept = git_backend._PACKED_REFS.get(str(git_dir / "packed-refs").encode())
    assert kept is not None and kept[1].completed
    if header:  # its ^ lines say it all: nothing more is held
        assert kept[1].completed[0] is kept[1].tags
    else:
        before = git_backend._packed_cost((kept[0], dataclasses.replace(kept[1], completed=[])))
        assert git_backend._packed_cost(kept) == before + 200 // 2


def test_a_small_file_is_peeled_by_each_advertisement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "peel", lambda store, oid, types=None, rests=None: oid)
    git_dir = _repo(tmp_path, _unpeeled(git_backend.RUN_MIN_REFS - 10, b""))
    repo = _open(git_dir)
    snapshot = git_pack.snapshot_refs(repo)
    repo.close()
    assert snapshot.run is None and snapshot.refs[b"refs/heads/main"] == A and B not in snapshot.refs.values()
