"""The fs backend's object store reads a loose object dulwich cannot parse as it is stored, finds
one by its file, and says what is wrong with a file that is no loose object."""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from dulwich.errors import ObjectFormatException

from backends import load_backend
from backends.git_objects import RawLooseObjectStore

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

ODD = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter C <c@d> soon +0000\n\nm\n"


def _store(tmp_path: Path) -> tuple[RawLooseObjectStore, Path]:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    store = load_backend("fs", str(tmp_path)).open("r.git").object_store
    assert isinstance(store, RawLooseObjectStore)
    return store, repo


def _write(repo: Path, raw: bytes, kind: str = "commit") -> bytes:
    return subprocess.run(["git", "--git-dir", str(repo), "hash-object", "-t", kind, "--literally", "-w", "--stdin"],
                          input=raw, capture_output=True, check=True).stdout.strip()


def test_an_object_dulwich_cannot_parse_is_read_raw(tmp_path: Path) -> None:
    store, repo = _store(tmp_path)
    oid = _write(repo, ODD)
    assert oid in store and store.contains_loose(oid)
    assert store.get_raw(oid) == (1, ODD)
    with pytest.raises(ObjectFormatException):
        store[oid]  # parsing it still says what is wrong
    blob = _write(repo, b"hello\n", "blob")
    assert store.get_raw(blob) == (3, b"hello\n") and store[blob].data == b"hello\n"  # the usual path
    with pytest.raises(KeyError):
        store.get_raw(b"1" * 40)
    assert store.loose_raw(b"1" * 40) is None and not store.contains_loose(b"1" * 40)


@pytest.mark.parametrize(("stored", "why"), [
    (zlib.compress(b"commit 99\0" + ODD), "no valid header"),  # a size that is not the text's
    (zlib.compress(b"thing 5\0hello"), "no valid header"),
    (zlib.compress(b"commit 5 hello"), "no valid header"),  # no NUL
    (zlib.compress(ODD)[:20], "does not inflate"),
    (b"not zlib at all", "does not inflate"),
])
def test_a_file_that_is_no_loose_object(tmp_path: Path, stored: bytes, why: str) -> None:
    store, repo = _store(tmp_path)
    oid = _write(repo, ODD)
    path = repo / "objects" / oid[:2].decode() / oid[2:].decode()
    path.chmod(0o644)
    path.write_bytes(stored)
    assert store.contains_loose(oid)  # found by its file: reading it says what is wrong
    with pytest.raises(ObjectFormatException, match=why):
        store.loose_raw(oid)


def test_the_store_s_bound_on_a_loose_object_holds(tmp_path: Path) -> None:
    store, repo = _store(tmp_path)
    oid = _write(repo, ODD + b"x" * 5000)
    store.loose_object_size_limit = 1000
    with pytest.raises(ObjectFormatException, match="larger than 1000 bytes"):
        store.loose_raw(oid)


def test_a_name_that_is_no_id_is_no_path(tmp_path: Path) -> None:
    """A name of the wrong length or not in lower-case hex is found nowhere (never joined to a path)."""
    store, repo = _store(tmp_path)
    outside = b"xx//" + b"./" * 13 + b"etc/passwd"  # 40 bytes that, joined as an id's path, name a file elsewhere
    assert len(outside) == 40 and os.path.isfile(os.path.join(repo / "objects", outside[:2].decode(), outside[2:].decode()))
    for name in (outside, b"G" * 40, b"a" * 39, b"A" * 40):
        assert store.loose_raw(name) is None and not store.contains_loose(name)
