"""A pushed large tree sent whole (``git push --no-thin``, a client with no base) links only the
entries that the store's tree at its path, in the pushed commit's parent, lacks: the others are
neither typed nor looked up again, and what differs is still refused as before (a wrong type, a
missing object); without such a tree every entry is linked."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tree
from dulwich.pack import pack_object_header
from dulwich.repo import Repo

from backends import git_ingest
from protocols.errors import ProtocolError
from tests.unit.backends.test_git_stored_tree_links import _edited, _ingest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

FILES = 2000
"""Entries of the stored directory: about 60 KB, well over ``git_reach.LARGE_TREE_BYTES``."""


def _whole_pack(objects: list[ShaFile]) -> bytes:
    out = b"PACK" + struct.pack(">II", 2, len(objects))
    for obj in objects:
        text = obj.as_raw_string()
        out += bytes(pack_object_header(obj.type_num, None, len(text), DEFAULT_OBJECT_FORMAT)) + zlib.compress(text)
    return out + hashlib.sha1(out).digest()


def _commit(tree: Tree, parents: list[ObjectID]) -> Commit:
    commit = Commit()
    commit.tree, commit.parents = tree.id, parents
    commit.author = commit.committer = b"A U Thor <a@example.com>"
    commit.author_time = commit.commit_time = 1700000000
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"a commit\n"
    return commit


def _root(directory: Tree) -> Tree:
    root = Tree()
    root.add(b"d", 0o040000, directory.id)
    return root


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Commit, Tree, list[Blob], Tree, Blob]:
    """A bare repository whose one commit holds ``d/``, a directory of ``FILES`` files; a small
    tree, and a blob no tree names."""
    server = tmp_path / "s.git"
    subprocess.run(["git", "init", "-q", "--bare", str(server)], check=True)
    blobs = [Blob.from_string(b"file %d\n" % n) for n in range(FILES)]
    directory = Tree()
    for n, blob in enumerate(blobs):
        directory.add(b"f%05d.txt" % n, 0o100644, blob.id)
    root = _root(directory)
    parent = _commit(root, [])
    small = Tree()
    small.add(b"x", 0o100644, blobs[0].id)
    loose = Blob.from_string(b"stored, named by no tree\n")
    Repo(str(server)).object_store.add_objects([(o, None) for o in (*blobs, directory, root, parent, small, loose)])
    return server, parent, directory, blobs, small, loose


def test_only_the_entries_the_parent_s_tree_lacks_are_typed_and_looked_up(
        stored: tuple[Path, Commit, Tree, list[Blob], Tree, Blob], monkeypatch: pytest.MonkeyPatch) -> None:
    server, parent, base, blobs, _small, loose = stored
    pushed = Blob.from_string(b"pushed\n")
    tree = _edited(base, (b"f00500.txt", 0o100644, pushed.id), (b"f01500.txt", 0o100644, loose.id),
                   (b"0-first.txt", 0o100644, blobs[7].id), b"f01998.txt")
    root = _root(tree)
    commit = _commit(root, [parent.id])
    links, typed = _ingest(server, _whole_pack([commit, root, tree, pushed]), monkeypatch)
    # (and the entry after the one removed, which the comparison takes as differing; the parent commit)
    differing = [loose.id, blobs[7].id, blobs[1999].id, parent.id]
    assert sorted(typed) == sorted(differing), "the shared entries' links are not typed"
    looked_up: list[bytes] = []
    store = Repo(str(server)).object_store
    added = git_ingest.PushedObjects()
    added.update([pushed.id, tree.id, root.id, commit.id])
    presence = git_ingest.store_presence(store)

    def has(hexsha: bytes) -> bool:
        looked_up.append(hexsha)
        return presence[1](hexsha)

    assert git_ingest.connected(store, [commit.id], added, links, (presence[0], has))
    assert looked_up == [], "nor looked up again: the lookups that typed them found them (each once)"
    subprocess.run(["git", "fsck", "--full", "--strict", "--no-dangling"], cwd=server, check=True,
                   capture_output=True)


def test_without_a_stored_tree_at_its_path_every_entry_is_linked(
        stored: tuple[Path, Commit, Tree, list[Blob], Tree, Blob], monkeypatch: pytest.MonkeyPatch) -> None:
    """A new history (no parent): nothing to compare with."""
    server, _parent, base, _blobs, _small, _loose = stored
    tree = _edited(base, b"f00001.txt")
    root = _root(tree)
    commit = _commit(root, [])
    _links, typed = _ingest(server, _whole_pack([commit, root, tree]), monkeypatch)
    assert len(typed) == FILES - 1


@pytest.mark.parametrize("entry", [
    (b"f00500.txt", 0o100644, "small"),
    (b"new", 0o040000, "loose"),
], ids=["blob-names-a-tree", "tree-names-a-blob"])
def test_a_differing_entry_of_the_wrong_type_is_refused(
        stored: tuple[Path, Commit, Tree, list[Blob], Tree, Blob], monkeypatch: pytest.MonkeyPatch,
        entry: tuple[bytes, int, str]) -> None:
    server, parent, base, _blobs, small, loose = stored
    name, mode, target = entry
    sha = {"small": small.id, "loose": loose.id}[target]
    tree = _edited(base, (name, mode, sha))
    root = _root(tree)
    commit = _commit(root, [parent.id])
    expected = "a tree, not the blob" if target == "small" else "a blob, not the tree"
    with pytest.raises(ProtocolError, match=f"object {sha.decode()} is ({expected})"):
        _ingest(server, _whole_pack([commit, root, tree]), monkeypatch)


def test_a_differing_entry_naming_a_missing_blob_is_not_connected(
        stored: tuple[Path, Commit, Tree, list[Blob], Tree, Blob], monkeypatch: pytest.MonkeyPatch) -> None:
    server, parent, base, _blobs, _small, _loose = stored
    missing = Blob.from_string(b"never sent\n")
    tree = _edited(base, (b"f00042.txt", 0o100644, missing.id))
    root = _root(tree)
    commit = _commit(root, [parent.id])
    links, _typed = _ingest(server, _whole_pack([commit, root, tree]), monkeypatch)
    added = git_ingest.PushedObjects()
    added.update([tree.id, root.id, commit.id])
    assert not git_ingest.connected(Repo(str(server)).object_store, [commit.id], added, links)
