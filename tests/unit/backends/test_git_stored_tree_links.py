"""A pushed large tree that is a delta of a tree the store holds links only the entries that tree
lacks: the others are neither typed nor looked up again, and what differs is still refused as before
(a wrong type, a missing object, across the stored tree's entry bounds too), as is a finding of the
whole tree's check."""

from __future__ import annotations

import binascii
import hashlib
import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, ShaFile, Tree
from dulwich.pack import create_delta, pack_object_header
from dulwich.repo import Repo

from backends import git_ingest
from backends.git_objects import PackObjectReader

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

FILES = 2000
"""Entries of the stored tree: about 60 KB, well over ``git_reach.LARGE_TREE_BYTES``."""
REF_DELTA = 7


def _pack(wholes: list[ShaFile], tree_delta: tuple[Tree, Tree]) -> bytes:
    """A thin pack: ``wholes``, then the second tree as a REF_DELTA of the first (stored) one."""
    base, tree = tree_delta
    out = b"PACK" + struct.pack(">II", 2, len(wholes) + 1)
    for obj in wholes:
        text = obj.as_raw_string()
        out += bytes(pack_object_header(obj.type_num, None, len(text), DEFAULT_OBJECT_FORMAT)) + zlib.compress(text)
    delta = b"".join(create_delta(base.as_raw_string(), tree.as_raw_string()))
    out += bytes(pack_object_header(REF_DELTA, bytes.fromhex(base.id.decode()), len(delta), DEFAULT_OBJECT_FORMAT))
    out += zlib.compress(delta)
    return out + hashlib.sha1(out).digest()


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Tree, list[Blob], Tree, Blob]:
    """A bare repository holding a tree of ``FILES`` files (one named ``a 40000 sub``), their blobs,
    a small tree, and a blob no tree names."""
    server = tmp_path / "s.git"
    subprocess.run(["git", "init", "-q", "--bare", str(server)], check=True)
    blobs = [Blob.from_string(b"file %d\n" % n) for n in range(FILES)]
    tree = Tree()
    for n, blob in enumerate(blobs[:-1]):
        tree.add(b"f%05d.txt" % n, 0o100644, blob.id)
    tree.add(b"a 40000 sub", 0o100644, blobs[-1].id)  # its bytes end as an entry "40000 sub" would
    small = Tree()
    small.add(b"x", 0o100644, blobs[0].id)
    loose = Blob.from_string(b"stored, named by no tree\n")
    Repo(str(server)).object_store.add_objects([(o, None) for o in (*blobs, tree, small, loose)])
    return server, tree, blobs, small, loose


def _edited(base: Tree, *changes: tuple[bytes, int, bytes] | bytes) -> Tree:
    """``base`` with entries ``(name, mode, id)`` set, and those named alone removed."""
    tree = Tree()
    for name, mode, sha in base.iteritems():
        tree.add(name, mode, sha)
    for change in changes:
        if isinstance(change, bytes):
            del tree[change]
        else:
            tree.add(*change)
    return tree


def _ingest(server: Path, data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[git_ingest.PushLinks, list[bytes]]:
    """Ingest ``data`` into the store with links kept; the links and every id typed meanwhile."""
    typed: list[bytes] = []
    type_of, types_of = PackObjectReader.type_of, PackObjectReader.types_of
    batch: list[bool] = []

    def counting(self: PackObjectReader, hexsha: bytes) -> int:
        if not batch:  # (one the batch looks up one by one is counted there)
            typed.append(hexsha)
        return type_of(self, hexsha)

    def counting_many(self: PackObjectReader, binshas: set[bytes]) -> dict[int, set[bytes]]:
        typed.extend(map(binascii.hexlify, binshas))
        batch.append(True)
        try:
            return types_of(self, binshas)
        finally:
            batch.pop()

    monkeypatch.setattr(PackObjectReader, "type_of", counting)
    monkeypatch.setattr(PackObjectReader, "types_of", counting_many)
    links = git_ingest.PushLinks()
    git_ingest.ingest_pack(Repo(str(server)).object_store, io.BytesIO(data).read, links)
    return links, typed


def test_only_the_entries_the_stored_tree_lacks_are_typed_and_looked_up(
        stored: tuple[Path, Tree, list[Blob], Tree, Blob], monkeypatch: pytest.MonkeyPatch) -> None:
    """One entry changed to a pushed blob, one to another stored blob, one added first (every entry
    after it shifted) and one removed: two links looked at, of 2,000 (before, every one)."""
    server, base, blobs, _small, loose = stored
    pushed = Blob.from_string(b"pushed\n")
    tree = _edited(base, (b"f00500.txt", 0o100644, pushed.id), (b"f01500.txt", 0o100644, loose.id),
                   (b"0-first.txt", 0o100644, blobs[7].id), b"f01998.txt")
    links, typed = _ingest(server, _pack([pushed], (base, tree)), monkeypatch)
    assert sorted(typed) == sorted([loose.id, blobs[7].id]), "the shared entries' links are not typed"
    looked_up: list[bytes] = []
    store = Repo(str(server)).object_store
    added = git_ingest.PushedObjects()
    added.update([pushed.id, tree.id])
    presence = git_ingest.store_presence(store)

    def has(hexsha: bytes) -> bool:
        looked_up.append(hexsha)
        return presence[1](hexsha)

    assert git_ingest.connected(store, [tree.id], added, links, (presence[0], has))
    assert looked_up == [], "nor looked up again: the lookups that typed them found them (each once)"
    subprocess.run(["git", "fsck", "--full", "--strict", "--no-dangling"], cwd=server, check=True,
                   capture_output=True)


@pytest.mark.parametrize("entry", [
    (b"f00500.txt", 0o100644, "small"),
    (b"sub", 0o040000, "last blob"),  # "40000 sub\0<id>" is in the stored tree's bytes, inside an entry
    (b"new", 0o040000, "loose"),
], ids=["blob-names-a-tree", "tree-across-entry-bounds", "tree-names-a-blob"])
def test_a_differing_entry_of_the_wrong_type_is_refused(
        stored: tuple[Path, Tree, list[Blob], Tree, Blob], monkeypatch: pytest.MonkeyPatch,
        entry: tuple[bytes, int, str]) -> None:
    server, base, blobs, small, loose = stored
    name, mode, target = entry
    sha = {"small": small.id, "last blob": blobs[-1].id, "loose": loose.id}[target]
    expected = "a tree, not the blob" if target == "small" else "a blob, not the tree|linked to as a tree and as a blob"
    with pytest.raises(git_ingest.ProtocolError, match=f"object {sha.decode()} is ({expected})"):
        _ingest(server, _pack([], (base, _edited(base, (name, mode, sha)))), monkeypatch)


def test_a_differing_entry_naming_a_missing_blob_is_not_connected(
        stored: tuple[Path, Tree, list[Blob], Tree, Blob], monkeypatch: pytest.MonkeyPatch) -> None:
    server, base, _blobs, _small, _loose = stored
    missing = Blob.from_string(b"never sent\n")
    tree = _edited(base, (b"f00042.txt", 0o100644, missing.id))
    links, _typed = _ingest(server, _pack([], (base, tree)), monkeypatch)
    added = git_ingest.PushedObjects()
    added.add(tree.id)
    assert not git_ingest.connected(Repo(str(server)).object_store, [tree.id], added, links)


def test_a_finding_in_an_entry_kept_from_the_stored_tree_is_still_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored tree may hold what a push may not (stored before the check, or by git itself):
    the pushed tree is checked whole."""
    server = tmp_path / "s.git"
    subprocess.run(["git", "init", "-q", "--bare", str(server)], check=True)
    blob = Blob.from_string(b"x\n")
    base = Tree()
    for n in range(FILES):
        base.add(b"f%05d.txt" % n, 0o100644, blob.id)
    base.add(b".GIT", 0o100644, blob.id)
    Repo(str(server)).object_store.add_objects([(blob, None), (base, None)])
    tree = _edited(base, (b"f00001.txt", 0o100755, blob.id))
    with pytest.raises(git_ingest.FsckError, match="hasDotgit"):
        _ingest(server, _pack([], (base, tree)), monkeypatch)
