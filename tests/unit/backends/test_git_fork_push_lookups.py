"""A fork's push (``objects/info/alternates``: ``git clone --shared``, hgwire's forks) types and looks
up its links to the objects it borrows in one batch, as a repository's push does its own: the
borrowed stores' packs are among the push's mapped indexes (``git_ingest.lookup_dirs``, as deep
as git follows alternates).  Each such link went through dulwich's ``get_raw`` one by one, the
object inflated: a new root commit over a borrowed directory of 100,000 files cost 3.3 s of
server CPU (git daemon 0.12 s).  A repack of the borrowed repository during the push is read
through, never an error; what a push was refused it still is."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest
from dulwich.object_store import DiskObjectStore
from dulwich.objects import Blob, Commit, Tree

from backends import git_ingest, git_objects, git_packindex
from backends.filesystem import FilesystemBackend
from backends.interfaces import MISSING_OBJECTS, ZERO_ID, GitRepository, Kind, ObjectId, RefUpdate
from tests.unit.backends.test_git_push_links_once import _commit, _new_root_over, _push

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

FILES = 600
MAIN = b"refs/heads/main"


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], capture_output=True, check=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
                               "PATH": "/usr/bin:/bin:/usr/local/bin"}).stdout.strip()


class _SlowPath:
    """Lookups of a push one object at a time: ``PackObjectReader.type_of``, and the reads dulwich
    answers (``read_outside_packs``: a loose object, an alternate's, inflated)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        for owner, name in ((git_objects.PackObjectReader, "type_of"), (git_objects, "read_outside_packs")):
            monkeypatch.setattr(owner, name, self._counting(name, getattr(owner, name)))

    def _counting(self, name: str, call: object) -> object:
        def counted(*args: object, **kwargs: object) -> object:
            self.counts[name] += 1
            return call(*args, **kwargs)  # type: ignore[operator]

        return counted


def _stored(tmp_path: Path) -> tuple[FilesystemBackend, list[Blob], Tree, Commit]:
    """A repository ``r`` holding one commit of a directory of ``FILES`` files, in one pack."""
    backend = FilesystemBackend(str(tmp_path))
    repo = cast(GitRepository, backend.create("r", Kind.GIT))
    blobs = [Blob.from_string(b"file %d\n" % n) for n in range(FILES)]
    directory = Tree()
    for n, blob in enumerate(blobs):
        directory.add(b"f%05d.txt" % n, 0o100644, blob.id)
    root = Tree()
    root.add(b"d", 0o040000, directory.id)
    stored = _commit(root, [], b"stored")
    assert _push(repo, [*blobs, directory, root, stored], [RefUpdate(MAIN, ZERO_ID, ObjectId(stored.id))]) == [None]
    return backend, blobs, directory, stored


def _fork(tmp_path: Path, depth: int) -> str:
    """A fork of ``r`` borrowing its objects (a fork of a fork… ``depth`` deep); its name."""
    origin = "r"
    for n in range(depth):
        name = f"fork{n}"
        _git("clone", "-q", "--bare", "--shared", os.fspath(tmp_path / f"{origin}.git"), os.fspath(tmp_path / f"{name}.git"))
        origin = name
    return origin


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("bad", [None, "missing", "a-commit-as-a-blob"])
def test_a_fork_s_push_types_its_borrowed_links_in_one_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            depth: int, bad: str | None) -> None:
    """A new root commit over the borrowed directory, pushed to a fork (of a fork of a fork): its
    600 links to borrowed files were each read through dulwich; now none is, and the push's
    answers are those it gave (a missing file, a commit named as a file refused, the ref kept)."""
    monkeypatch.setattr(git_ingest, "SMALL_INDEX", 0)
    backend, _blobs, directory, stored = _stored(tmp_path)
    fork = _fork(tmp_path, depth)
    slow = _SlowPath(monkeypatch)
    objects, commit = _new_root_over(directory, bad, stored)
    results = _push(cast(GitRepository, backend.open(fork)), objects,
                    [RefUpdate(MAIN, ObjectId(stored.id), ObjectId(commit.id))])
    one_by_one = slow.counts["type_of"] + slow.counts["read_outside_packs"]
    assert one_by_one < 10, f"{one_by_one} lookups one by one for {FILES} borrowed links ({dict(slow.counts)})"
    ref = _git("-C", os.fspath(tmp_path / f"{fork}.git"), "rev-parse", "refs/heads/main")
    if bad is None:
        assert results == [None] and ref == commit.id
    else:
        refusal = MISSING_OBJECTS if bad == "missing" else f"object {stored.id.decode()} is a commit, not the blob"
        assert results[0] is not None and refusal in results[0]
        assert ref == stored.id


@pytest.mark.parametrize("layout", ["seven-deep", "a-loop"])
def test_the_borrowed_packs_are_followed_as_deep_as_git_follows_alternates(tmp_path: Path, layout: str) -> None:
    """Five stores deep (git's limit) past the fork's own, each once when they borrow from one
    another in a loop; never a push's quarantine (an alternate of the push's store)."""
    _stored(tmp_path)
    fork = _fork(tmp_path, 7 if layout == "seven-deep" else 2)
    if layout == "a-loop":
        (tmp_path / "r.git" / "objects" / "info").mkdir(exist_ok=True)
        (tmp_path / "r.git" / "objects" / "info" / "alternates").write_text(
            os.fspath(tmp_path / "fork1.git" / "objects") + "\n")
        expected = ["fork1", "fork0", "r"]
    else:
        expected = [f"fork{n}" for n in (6, 5, 4, 3, 2, 1)]
    store = cast(DiskObjectStore, cast(Any, FilesystemBackend(str(tmp_path)).open(fork)).object_store)
    quarantine = git_ingest.Quarantine(store)
    quarantine.expose()
    try:
        dirs = git_ingest.lookup_dirs(store)
    finally:
        quarantine.drop()
    assert [os.path.realpath(d) for d in dirs] == [
        os.path.realpath(tmp_path / f"{name}.git" / "objects" / "pack") for name in expected]


def test_a_repack_of_the_borrowed_repository_during_the_push_is_read_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The borrowed repository is repacked (its pack replaced, ``git repack -a -d -f``) once the
    push has listed its packs, before it looks in them: the push finds its links in the new pack,
    lands, and no error reaches the client."""
    monkeypatch.setattr(git_ingest, "SMALL_INDEX", 0)
    backend, _blobs, directory, _stored_commit = _stored(tmp_path)
    fork = _fork(tmp_path, 1)
    origin = tmp_path / "r.git"
    old = set((origin / "objects" / "pack").glob("*.pack"))
    add_new = git_packindex.MappedPacks._add_new
    repacked: list[bool] = []

    def listing_then_repack(self: git_packindex.MappedPacks) -> bool:
        added = add_new(self)
        if not repacked:
            repacked.append(True)
            _git("-C", os.fspath(origin), "repack", "-q", "-a", "-d", "-f")
        return added

    monkeypatch.setattr(git_packindex.MappedPacks, "_add_new", listing_then_repack)
    dropped: list[str] = []
    drop = git_packindex.MappedPacks.drop

    def counted_drop(self: git_packindex.MappedPacks, pack_path: str) -> None:
        dropped.append(pack_path)
        drop(self, pack_path)

    monkeypatch.setattr(git_packindex.MappedPacks, "drop", counted_drop)
    slow = _SlowPath(monkeypatch)
    objects, commit = _new_root_over(directory)
    results = _push(cast(GitRepository, backend.open(fork)), objects,
                    [RefUpdate(b"refs/heads/other", ZERO_ID, ObjectId(commit.id))])
    assert repacked and not old & set((origin / "objects" / "pack").glob("*.pack")), "the borrowed pack was replaced"
    assert results == [None]
    assert [os.path.dirname(path) for path in dropped] == [os.fspath(origin / "objects" / "pack")], \
        "the replaced pack was found gone, and its successor looked in"
    assert slow.counts["read_outside_packs"] < 10
