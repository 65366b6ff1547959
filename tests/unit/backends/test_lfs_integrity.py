"""``LfsStore``'s checks of an object's bytes against its name before they are sent."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from backends import blobs
from backends.hg.largefiles import LargefileCorrupt, LargefileStore
from backends.lfs import LfsObjectCorrupt, LfsStore


def _stored(tmp_path: Path, data: bytes) -> tuple[LfsStore, str, Path]:
    store = LfsStore(str(tmp_path), hg_layout=True)
    oid = hashlib.sha256(data).hexdigest()
    store.put(oid, len(data), [data])
    return store, oid, Path(store.path_of(oid))


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


def test_a_corrupt_object_is_refused_before_any_byte(tmp_path: Path) -> None:
    data = os.urandom(3 * blobs.CHUNK + 5)
    store, oid, path = _stored(tmp_path, data)
    assert store.intact(oid) is True
    _size, chunks = store.open_checked(oid) or (0, iter(()))
    assert b"".join(chunks) == data
    _flip(path, len(data) - 1)
    assert store.intact(oid) is False
    with pytest.raises(LfsObjectCorrupt) as refused:
        store.open_checked(oid)
    assert refused.value.path == str(path) and "corrupt" in str(refused.value)
    with pytest.raises(LfsObjectCorrupt):
        store.open_checked(oid, 10, 20)  # a range of good bytes of a corrupt object too
    assert store.intact("0" * 64) is None and store.open_checked("0" * 64) is None


def test_an_object_changed_in_place_after_its_check_is_cut_before_its_last_chunk(tmp_path: Path) -> None:
    """A file found intact is not hashed again while its stamp holds, but hashed as it goes out: a
    change the stamp does not show (bits rotting under the same times) never reaches the end."""
    data = os.urandom(3 * blobs.CHUNK + 5)
    store, oid, path = _stored(tmp_path, data)
    assert store.intact(oid) is True
    _flip(path, 7)
    with blobs._CHECKED_LOCK:  # the stamp of the changed file, as if nothing showed the change
        blobs._CHECKED[str(path)] = (blobs._stamp(os.stat(path)), True)
    size, chunks = store.open_checked(oid) or (0, iter(()))
    assert size == len(data)
    given = []
    with pytest.raises(LfsObjectCorrupt):
        given.extend(chunks)
    assert sum(map(len, given)) < len(data)
    assert store.intact(oid) is False, "forgotten, then hashed again"


def test_a_span_of_an_object_is_sent_only_once_the_whole_is_hashed(tmp_path: Path) -> None:
    """A span (a resumed download) cannot be checked as it goes: the whole object is hashed first,
    even when a check found it intact before."""
    data = os.urandom(2 * blobs.CHUNK)
    store, oid, path = _stored(tmp_path, data)
    assert store.intact(oid) is True
    _flip(path, len(data) - 1)
    with blobs._CHECKED_LOCK:
        blobs._CHECKED[str(path)] = (blobs._stamp(os.stat(path)), True)
    with pytest.raises(LfsObjectCorrupt):
        store.open_checked(oid, 0, 10)


def test_a_batch_budget_leaves_large_objects_unchecked(tmp_path: Path) -> None:
    data = os.urandom(1000)
    store, oid, _ = _stored(tmp_path, data)
    assert store.intact(oid, [999]) is None
    budget = [1500]
    assert store.intact(oid, budget) is True and budget == [500]
    assert store.intact(oid, [0]) is True, "a remembered check costs nothing"


def test_a_largefile_is_checked_by_the_same_code_under_its_sha1(tmp_path: Path) -> None:
    """hg's largefiles store (``.hg/largefiles/<sha1>``) sends a file only while it hashes to its
    name, as the LFS store does, and remembers one found corrupt (``statlfile`` says 1)."""
    store = LargefileStore(str(tmp_path).encode())
    data = os.urandom(2 * blobs.CHUNK + 3)
    sha = hashlib.sha1(data).hexdigest().encode()
    store.put(sha, [data])
    _size, chunks = store.open_checked(sha) or (0, iter(()))
    assert b"".join(chunks) == data and not store.known_corrupt(sha)
    _flip(Path(store.path_of(sha)), 1)
    assert not store.known_corrupt(sha), "not hashed by a stat"
    with pytest.raises(LargefileCorrupt) as refused:
        store.open_checked(sha)
    assert refused.value.path == store.path_of(sha) and refused.value.kind == "largefile"
    assert store.known_corrupt(sha) and store.open_checked(b"0" * 40) is None
