"""backends.git_ingest: a large pushed tree of files whose links wait until every object is named
(``PackIngest._link_deferred``) is linked from its entries' raw ids (``entry_ids``), not parsed
again into names, hex ids, modes and tuples; what it refused it still refuses."""

from __future__ import annotations

import binascii
import hashlib
import random
import sys
from pathlib import Path
from typing import cast

import pytest
from dulwich.objects import Blob, Tree, parse_tree

from backends import git_ingest
from backends.filesystem import FilesystemBackend
from backends.interfaces import MISSING_OBJECTS, ZERO_ID, GitRepository, Kind, ObjectId, RefUpdate
from tests.unit.backends.test_git_push_links_once import _commit, _new_root_over, _push

FILES = 2000


@pytest.mark.parametrize("raw_len", [20, 32])
def test_the_ids_are_those_parse_tree_reads(raw_len: int) -> None:
    """Names with spaces, ids holding NULs, spaces and digits, every mode git writes (and a
    zero-padded one): the raw ids in order, as ``parse_tree`` has them in hex."""
    rng = random.Random(7)
    modes = [b"100644", b"100755", b"120000", b"40000", b"160000", b"040000"]
    entries = []
    for n in range(500):
        sha = bytes(rng.choice(b"\0 0123 7\n\xff") for _ in range(raw_len)) if n % 3 == 0 else \
            hashlib.sha256(b"%d" % n).digest()[:raw_len]
        entries.append((b"f %d\t" % n, rng.choice(modes), sha))
    raw = b"".join(mode + b" " + name + b"\0" + sha for name, mode, sha in entries)
    assert git_ingest.entry_ids(raw, raw_len) == [binascii.unhexlify(sha) for _n, _m, sha in parse_tree(raw, raw_len)]


@pytest.mark.parametrize("bad", [None, "missing", "a-commit-as-a-blob"])
def test_a_large_directory_of_files_is_linked_from_its_raw_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str | None) -> None:
    """A new root commit over a stored directory of 2,000 files (one more, and, as ``bad`` says, a
    file never sent or a commit named as a file): the waiting tree is not parsed again, and the push
    is taken or refused as before."""
    backend = FilesystemBackend(str(tmp_path))
    repo = cast(GitRepository, backend.create("r", Kind.GIT))
    blobs = [Blob.from_string(b"file %d\n" % n) for n in range(FILES)]
    directory = Tree()
    for n, blob in enumerate(blobs):
        directory.add(b"f%05d.txt" % n, 0o100644, blob.id)
    root = Tree()
    root.add(b"d", 0o040000, directory.id)
    stored = _commit(root, [], b"stored")
    main = b"refs/heads/main"
    assert _push(repo, [*blobs, directory, root, stored], [RefUpdate(main, ZERO_ID, ObjectId(stored.id))]) == [None]

    parsed: list[int] = []
    deferred: list[int] = []
    real_parse, real_link = parse_tree, git_ingest.PackIngest._link_deferred
    linking = [False]

    def counted_parse(raw: bytes, raw_len: int = 20) -> object:
        if linking[0]:
            parsed.append(len(raw))
        return real_parse(raw, raw_len)

    def watched_link(self: git_ingest.PackIngest, get_raw: object) -> None:
        deferred.append(len(self._deferred))
        linking[0] = True
        try:
            real_link(self, get_raw)  # type: ignore[arg-type]
        finally:
            linking[0] = False

    monkeypatch.setattr(git_ingest, "parse_tree", counted_parse)
    monkeypatch.setattr(git_ingest.PackIngest, "_link_deferred", watched_link)
    objects, commit = _new_root_over(directory, bad, stored)
    results = _push(cast(GitRepository, backend.open("r")), objects,
                    [RefUpdate(main, ObjectId(stored.id), ObjectId(commit.id))])
    assert deferred == [1], "the large tree waits to be linked"
    assert parsed == [], "the waiting tree is not parsed again"
    ref = (tmp_path / "r.git" / "refs" / "heads" / "main").read_bytes().strip()
    if bad is None:
        assert results == [None] and ref == commit.id
    else:
        refusal = MISSING_OBJECTS if bad == "missing" else f"object {stored.id.decode()} is a commit, not the blob"
        assert results[0] is not None and refusal in results[0]
        assert ref == stored.id


def test_settling_a_packs_own_objects_makes_no_python_call_for_each() -> None:
    """A pack of 20,000 files its trees link to: ``settle`` iterates its own blobs (two or three
    times) in chunks unpacked by C-level calls, not an ``_IdColumn.__getitem__`` an object, and
    drops the links to them, keeping those to objects outside the pack."""
    count = 20_000
    column = git_ingest._IdColumn(20)
    ids = [hashlib.sha1(b"%d" % n).digest() for n in range(count)]
    column.extend(ids)
    kinds = bytearray([git_ingest.BLOB]) * count
    outside = [hashlib.sha1(b"outside %d" % n).digest() for n in range(3)]
    links = git_ingest.PushLinks()
    links.link_entries([(b"f%d" % n, 0o100644, sha.hex().encode()) for n, sha in enumerate(ids + outside)])
    links.link_entries([(b"d", 0o040000, outside[0].hex().encode())])
    own = {kind: column.of_kind(kinds, kind) for kind in (git_ingest.COMMIT, git_ingest.TREE, git_ingest.BLOB)}
    calls = 0

    def counted(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(counted)
    try:
        wrong = links.settle(own)
    finally:
        sys.setprofile(None)
    assert wrong is not None and outside[0].hex() in wrong  # (a file and a directory: both cannot be)
    links = git_ingest.PushLinks()
    links.link_entries([(b"f%d" % n, 0o100644, sha.hex().encode()) for n, sha in enumerate(ids + outside)])
    sys.setprofile(counted)
    try:
        calls = 0
        assert links.settle(own) is None
    finally:
        sys.setprofile(None)
    assert calls < count // 10, f"{calls} Python calls for {count} objects"
    assert links.linked() == {sha.hex().encode() for sha in outside}
