"""A push's links to stored objects are looked up once, as git's receive-pack checks connectivity
once: the lookup that types each link at ingest (``PushLinks.mismatch``) finds it, and the check
of the refs (``PushLinks.closed``) looks up only what that one did not find.  The reader that
types them and the refs' check share one ``MappedPacks`` per push (``git_ingest.StoreLookups``).
And nothing is accepted that the two lookups refused: a missing object, an object of another type
than its link says, a tree naming a commit outside a submodule entry."""

from __future__ import annotations

import binascii
import io
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from dulwich.object_format import SHA1
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tree
from dulwich.pack import write_pack_objects

from backends import git_ingest, git_packindex
from backends.filesystem import FilesystemBackend
from backends.git_objects import PackObjectReader
from backends.interfaces import MISSING_OBJECTS, ZERO_ID, GitRepository, Kind, ObjectId, RefUpdate
from protocols.errors import ProtocolError

FILES = 600
MAIN = b"refs/heads/main"


def _pack(objects: list[ShaFile]) -> bytes:
    buf = io.BytesIO()
    write_pack_objects(buf, [(o, None) for o in objects], object_format=SHA1)
    return buf.getvalue()


def _commit(tree: Tree, parents: list[ObjectID], message: bytes = b"c") -> Commit:
    commit = Commit()
    commit.tree, commit.parents = tree.id, parents
    commit.author = commit.committer = b"Test <test@example.com>"
    commit.author_time = commit.commit_time = 1700000000
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message
    return commit


def _new_root_over(directory: Tree, bad: str | None = None, stored: Commit | None = None
                   ) -> tuple[list[ShaFile], Commit]:
    """The objects of a new root commit whose tree holds ``directory`` as ``d`` with one file more
    (``new.txt``), and, as ``bad`` says, a link to a file never sent (``missing``) or to the commit
    ``stored`` named as a file (``a-commit-as-a-blob``); the commit last."""
    new = Blob.from_string(b"one more\n")
    pushed = cast(Tree, directory.copy())
    pushed.add(b"new.txt", 0o100644, new.id)
    if bad == "missing":
        pushed.add(b"gone.txt", 0o100644, Blob.from_string(b"never sent\n").id)
    elif bad == "a-commit-as-a-blob":
        assert stored is not None
        pushed.add(b"x.txt", 0o100644, stored.id)
    root = Tree()
    root.add(b"d", 0o040000, pushed.id)
    commit = _commit(root, [], b"a new root")
    return [new, pushed, root, commit], commit


def _push(repo: GitRepository, objects: list[ShaFile], updates: list[RefUpdate]) -> list[str | None]:
    """The pack and the updates, as a session sends them; each ref's result (the unpack error as
    every ref's, when the pack is refused)."""
    sink = repo.begin_pack()
    try:
        sink.write(_pack(objects))
        sink.commit()
    except ProtocolError as exc:
        sink.abort()
        return [str(exc)] * len(updates)
    return [r.reason for r in repo.update_refs(updates, atomic=False)]


def _fsck(git_dir: Path) -> None:
    subprocess.run(["git", "--git-dir", str(git_dir), "fsck", "--full", "--strict", "--no-dangling"], check=True,
                   capture_output=True, env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1",
                                             "HOME": str(git_dir)})


class Stored:
    """A repository whose ``main`` holds ``d/``, a directory of ``FILES`` files (one pack), a
    stored tree and a stored commit of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.backend = FilesystemBackend(str(tmp_path))
        self.git_dir = tmp_path / "r.git"
        repo = cast(GitRepository, self.backend.create("r", Kind.GIT))
        self.blobs = [Blob.from_string(b"file %d\n" % n) for n in range(FILES)]
        self.directory = Tree()
        for n, blob in enumerate(self.blobs):
            self.directory.add(b"f%05d.txt" % n, 0o100644, blob.id)
        self.root = Tree()
        self.root.add(b"d", 0o040000, self.directory.id)
        self.commit = _commit(self.root, [], b"stored")
        self.extra = Blob.from_string(b"a file outside d/\n")
        side_root = Tree()
        side_root.add(b"extra.txt", 0o100644, self.extra.id)
        self.side = _commit(side_root, [], b"another history")
        assert _push(repo, [*self.blobs, self.directory, self.root, self.commit, self.extra, side_root, self.side],
                     [RefUpdate(MAIN, ZERO_ID, ObjectId(self.commit.id)),
                      RefUpdate(b"refs/heads/side", ZERO_ID, ObjectId(self.side.id))]) == [None, None]

    def open(self) -> GitRepository:
        return cast(GitRepository, self.backend.open("r"))

    def main(self) -> bytes:
        return (self.git_dir / "refs" / "heads" / "main").read_bytes().strip()


@pytest.fixture
def stored(tmp_path: Path) -> Stored:
    return Stored(tmp_path)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[bytes]]:
    """Every lookup of an object by id a push makes: its type (``PackObjectReader.type_of``, or
    ``types_of`` for many), or its presence (``Presence``), counted by id."""
    counted: Counter[bytes] = Counter()
    type_of, contains = PackObjectReader.type_of, git_ingest.Presence.__contains__
    types_of = PackObjectReader.types_of
    batch: list[bool] = []

    def counting_type_of(self: PackObjectReader, hexsha: bytes) -> int:
        if not batch:  # (one the batch looks up one by one is counted there)
            counted[hexsha] += 1
        return type_of(self, hexsha)

    def counting_types_of(self: PackObjectReader, binshas: set[bytes]) -> dict[int, set[bytes]]:
        counted.update(map(binascii.hexlify, binshas))
        batch.append(True)
        try:
            return types_of(self, binshas)
        finally:
            batch.pop()

    def counting_contains(self: git_ingest.Presence, hexsha: object) -> bool:
        assert isinstance(hexsha, bytes)
        counted[hexsha] += 1
        return contains(self, hexsha)

    monkeypatch.setattr(PackObjectReader, "type_of", counting_type_of)
    monkeypatch.setattr(PackObjectReader, "types_of", counting_types_of)
    monkeypatch.setattr(git_ingest.Presence, "__contains__", counting_contains)
    yield counted


def test_a_new_root_over_a_stored_directory_looks_each_link_up_once(stored: Stored, lookups: Counter[bytes]) -> None:
    """A new history over the stored directory and one file more: its tree is sent whole, and links
    to every stored file.  Each was looked up twice, typed at ingest and looked for again by the
    refs' check (0.3 s of the 0.87 s of server CPU of such a push over 100,000 files)."""
    objects, commit = _new_root_over(stored.directory)
    lookups.clear()
    assert _push(stored.open(), objects,
                 [RefUpdate(b"refs/heads/other", ZERO_ID, ObjectId(commit.id))]) == [None]
    linked = {bytes(blob.id) for blob in stored.blobs}
    assert {sha: n for sha, n in lookups.items() if sha in linked} == dict.fromkeys(linked, 1)
    assert (stored.git_dir / "refs" / "heads" / "other").read_bytes().strip() == commit.id
    _fsck(stored.git_dir)


def test_one_push_makes_one_mapped_packs(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored pack is too large to view for the push (no view is cached for it): the reader that
    types the links and the refs' check each made a ``MappedPacks`` over it, listing the directory
    and mapping its index twice."""
    monkeypatch.setattr(git_ingest, "SMALL_INDEX", 0)
    made: list[git_packindex.MappedPacks] = []
    listed: list[git_packindex.MappedPacks] = []
    init, add_new = git_packindex.MappedPacks.__init__, git_packindex.MappedPacks._add_new

    def counting_init(self: git_packindex.MappedPacks, *args: object, **kwargs: object) -> None:
        made.append(self)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    def counting_add_new(self: git_packindex.MappedPacks) -> bool:
        listed.append(self)
        return add_new(self)

    monkeypatch.setattr(git_packindex.MappedPacks, "__init__", counting_init)
    monkeypatch.setattr(git_packindex.MappedPacks, "_add_new", counting_add_new)
    new = Blob.from_string(b"changed\n")
    tree = Tree()
    tree.add(b"changed.txt", 0o100644, new.id)
    tree.add(b"kept.txt", 0o100644, stored.blobs[3].id)
    commit = _commit(tree, [stored.commit.id], b"on top")
    results = _push(stored.open(), [new, tree, commit],
                    [RefUpdate(MAIN, ObjectId(stored.commit.id), ObjectId(commit.id)),
                     RefUpdate(b"refs/heads/old", ZERO_ID, ObjectId(stored.commit.id))])  # (a stored tip)
    assert results == [None, None]
    assert len(made) == 1 and {id(m) for m in listed} == {id(made[0])}
    assert stored.main() == commit.id
    _fsck(stored.git_dir)


def _bad_entries(stored: Stored) -> dict[str, tuple[tuple[bytes, int, bytes], str]]:
    """Entries a pushed tree may not hold, and the words of the refusal of each."""
    missing = Blob.from_string(b"never sent\n").id
    return {
        "missing-blob": ((b"gone.txt", 0o100644, missing), MISSING_OBJECTS),
        "missing-tree": ((b"gone", 0o040000, missing), MISSING_OBJECTS),
        "blob-names-a-tree": ((b"x.txt", 0o100644, stored.directory.id),
                              f"object {stored.directory.id.decode()} is a tree, not the blob"),
        "tree-names-a-blob": ((b"x", 0o040000, stored.extra.id),
                              f"object {stored.extra.id.decode()} is a blob, not the tree"),
        "blob-names-a-commit": ((b"x.txt", 0o100644, stored.side.id),
                                f"object {stored.side.id.decode()} is a commit, not the blob"),
        "tree-names-a-commit": ((b"x", 0o040000, stored.side.id),
                                f"object {stored.side.id.decode()} is a commit, not the tree"),
    }


@pytest.mark.parametrize("case", ["missing-blob", "missing-tree", "blob-names-a-tree", "tree-names-a-blob",
                                  "blob-names-a-commit", "tree-names-a-commit"])
@pytest.mark.parametrize("history", ["new-root", "on-top"])
def test_what_either_lookup_refused_is_refused(stored: Stored, case: str, history: str) -> None:
    """A pushed directory of every stored file and one bad entry (a new history: the tree is linked
    whole; on top of ``main``: only the entry is); ``main`` stays, and the store is whole."""
    entry, refusal = _bad_entries(stored)[case]
    directory = cast(Tree, stored.directory.copy())
    name, mode, sha = entry
    directory.add(name, mode, ObjectID(sha))
    root = Tree()
    root.add(b"d", 0o040000, directory.id)
    commit = _commit(root, [] if history == "new-root" else [stored.commit.id], b"bad")
    before = stored.main()
    results = _push(stored.open(), [directory, root, commit],
                    [RefUpdate(MAIN, ObjectId(before), ObjectId(commit.id))])
    assert results[0] is not None and refusal in results[0]
    assert stored.main() == before
    _fsck(stored.git_dir)


def test_a_submodule_s_commit_is_not_looked_for(stored: Stored, lookups: Counter[bytes]) -> None:
    elsewhere = Blob.from_string(b"a commit of another repository\n").id
    tree = Tree()
    tree.add(b"lib", 0o160000, elsewhere)
    tree.add(b"kept.txt", 0o100644, stored.blobs[0].id)
    commit = _commit(tree, [stored.commit.id], b"a submodule")
    assert _push(stored.open(), [tree, commit], [RefUpdate(MAIN, ObjectId(stored.commit.id),
                                                           ObjectId(commit.id))]) == [None]
    assert lookups[elsewhere] == 0 and lookups[stored.blobs[0].id] == 1
    assert stored.main() == commit.id


def test_a_link_missing_at_ingest_is_looked_for_again_by_the_refs_check(
        stored: Stored, lookups: Counter[bytes]) -> None:
    """Only what the ingest did not find is looked up again (a walk from the tip then says what is
    missing); the links it found are not."""
    missing = Blob.from_string(b"never sent\n")
    tree = Tree()
    tree.add(b"gone.txt", 0o100644, missing.id)
    tree.add(b"kept.txt", 0o100644, stored.blobs[5].id)
    commit = _commit(tree, [stored.commit.id], b"incomplete")
    results = _push(stored.open(), [tree, commit], [RefUpdate(MAIN, ObjectId(stored.commit.id),
                                                              ObjectId(commit.id))])
    assert results == [MISSING_OBJECTS]
    assert lookups[missing.id] >= 2, "typed at ingest (not found), looked for by the refs' check"
    assert stored.main() == stored.commit.id
