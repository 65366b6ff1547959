"""backends.git_ingest: what a push of many tiny objects holds for each of them while it is indexed."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import tracemalloc
import zlib
from array import array
from pathlib import Path

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.pack import pack_object_header
from dulwich.repo import Repo

from backends import git_ingest
from protocols.git_receive import PackScanner

OBJECTS = 40_000
BYTES_AN_OBJECT = 200
"""git's index-pack held about 130 bytes an object for a million tiny blobs; hgwire held 300 and
more (a bytes object and a list slot for each id, a set of each kind's ids, the sort's keys), then
256-271 here (a bytes object and a set slot for each link, the large trees kept twice, the scan's
offsets), 164-181 since."""


def _whole(type_num: int, body: bytes) -> bytes:
    return bytes(pack_object_header(type_num, None, len(body), DEFAULT_OBJECT_FORMAT)) + zlib.compress(body, 1)


def _object_id(type_name: bytes, body: bytes) -> bytes:
    return hashlib.sha1(type_name + b" %d\0" % len(body) + body).digest()


def _tree(entries: list[tuple[bytes, bytes, bytes]]) -> bytes:
    return b"".join(mode + b" " + name + b"\0" + sha for name, mode, sha in sorted(entries))


def _tiny_blobs_pack(count: int, per_tree: int = 100) -> tuple[bytes, bytes]:
    """A pack of ``count`` tiny blobs, ``per_tree`` to a directory, the trees and a commit of them;
    the commit's id."""
    out = bytearray(b"PACK" + struct.pack(">II", 2, 0))
    directories = []
    for start in range(0, count, per_tree):
        blobs = [b"%d\n" % i for i in range(start, min(start + per_tree, count))]
        tree = _tree([(b"f%d" % i, b"100644", _object_id(b"blob", blob)) for i, blob in enumerate(blobs)])
        directories.append((b"d%d" % start, b"40000", _object_id(b"tree", tree)))
        out += _whole(2, tree) + b"".join(_whole(3, blob) for blob in blobs)
    root = _tree(directories)
    commit = b"tree " + _object_id(b"tree", root).hex().encode() + b"\nauthor A <a@example.com> 1700000000 +0000\n" \
        b"committer A <a@example.com> 1700000000 +0000\n\nmany\n"
    out += _whole(2, root) + _whole(1, commit)
    out[8:12] = struct.pack(">I", count + len(directories) + 2)
    return bytes(out + hashlib.sha1(out).digest()), _object_id(b"commit", commit).hex().encode()


@pytest.fixture(scope="module")
def tiny_pack() -> tuple[bytes, bytes]:
    """``_tiny_blobs_pack(OBJECTS)``, made once for the module (its tests only read it)."""
    return _tiny_blobs_pack(OBJECTS)


CHECKS_BYTES_AN_OBJECT = 120
"""What the ingest holds once its ids are sorted, through the checks that follow (its links' types,
the large trees' links): its columns, the sorted ids and their order, and the links (110 bytes an
object).  The ids in pack order stayed beside the sorted ones until the index was written, and a
column of -1 stood for the base offsets of a pack without deltas: 134."""


def test_a_push_of_many_tiny_blobs_holds_little_for_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         tiny_pack: tuple[bytes, bytes]) -> None:
    """Scanned as the server scans a push, indexed and its links checked: the peak of what Python
    held, over the objects, stays under ``BYTES_AN_OBJECT`` (a pack of a hundred million tiny objects
    is 1.5 GB, under the bound on a pushed pack); what it holds when the links' types are checked
    (after the sort), under ``CHECKS_BYTES_AN_OBJECT`` (one ingest for both: the same set-up); the
    pack is git's to read as before."""
    monkeypatch.setattr(git_ingest, "PARALLEL_MIN_OBJECTS", 10 * OBJECTS)  # (a forked helper is not traced)
    monkeypatch.setattr(git_ingest, "SPILL_LINKS", OBJECTS // 16, raising=False)  # (as a million's links spill)
    data, commit = tiny_pack
    server = tmp_path / "server.git"
    subprocess.run(["git", "init", "-q", "--bare", str(server)], check=True)
    store = Repo(str(server)).object_store
    held: list[int] = []
    check = git_ingest.PackIngest._check_link_types

    def measured(ingest: git_ingest.PackIngest, reader: object) -> None:
        held.append(tracemalloc.get_traced_memory()[0] - base)
        check(ingest, reader)  # type: ignore[arg-type]

    monkeypatch.setattr(git_ingest.PackIngest, "_check_link_types", measured)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        links = git_ingest.PushLinks()
        scanner = PackScanner()
        ingest = git_ingest.PackIngest(store, links)
        for at in range(0, len(data), 1 << 14):
            chunk = data[at:at + (1 << 14)]
            ingest.write(chunk[:scanner.feed(chunk)], scanner.take_objects())
        pack = ingest.commit()
        ingest.abort()
        assert links.closed(git_ingest.PushedObjects(), lambda _hexsha: False)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert pack is not None and len(pack) == OBJECTS + OBJECTS // 100 + 2 and len(held) == 1
    assert peak / OBJECTS < BYTES_AN_OBJECT, f"{peak / OBJECTS:.0f} bytes an object"
    assert held[0] / OBJECTS < CHECKS_BYTES_AN_OBJECT, f"{held[0] / OBJECTS:.0f} bytes an object at the checks"
    subprocess.run(["git", "-C", str(server), "update-ref", "refs/heads/main", commit.decode()], check=True)
    fsck = subprocess.run(["git", "-C", str(server), "fsck", "--full", "--strict", "--no-dangling"],
                          check=False, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


SORT_BYTES_AN_ID = 36
"""What sorting a pack's ids may hold beside their column: the sorted ids (20 bytes) and each one's
index (4); the sort held 50 (8-byte indexes, and the sorted ids grown in a buffer, then copied)."""


def test_sorting_the_ids_of_many_objects_holds_little_beside_them() -> None:
    """The ids of 200,000 objects sorted (as a push sorts them for its index): the peak of what
    Python held on top of their column stays under ``SORT_BYTES_AN_ID`` an id, and the order is right."""
    count = 200_000
    ids = [hashlib.sha1(b"%d" % i).digest() for i in range(count)]
    column = git_ingest._IdColumn(20)
    column.extend(ids)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        ordered, order, twice = column.sorted()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert twice is None
    assert bytes(ordered.blob) == b"".join(sorted(ids))
    assert [ids[at] for at in order[:1000]] == sorted(ids)[:1000]
    assert ordered[5] == sorted(ids)[5] and isinstance(ordered[5], bytes)
    assert peak / count < SORT_BYTES_AN_ID, f"{peak / count:.0f} bytes an id"


def test_a_committed_push_of_many_objects_keeps_nothing_for_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   tiny_pack: tuple[bytes, bytes]) -> None:
    """A push's sink keeps its ingest until the push ends (its refs checked and updated): once the pack
    is committed, what the ingest still holds is under 4 bytes an object (it kept its ids twice, offsets,
    CRCs and types: 61)."""
    monkeypatch.setattr(git_ingest, "PARALLEL_MIN_OBJECTS", 10 * OBJECTS)
    data, _commit = tiny_pack
    server = tmp_path / "server.git"
    subprocess.run(["git", "init", "-q", "--bare", str(server)], check=True)
    store = Repo(str(server)).object_store
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        ingest = git_ingest.PackIngest(store, git_ingest.PushLinks())
        scanner = PackScanner()
        for at in range(0, len(data), 1 << 14):
            chunk = data[at:at + (1 << 14)]
            ingest.write(chunk[:scanner.feed(chunk)], scanner.take_objects())
        pack = ingest.commit()
        ingest.abort()
        git_ingest._ids_of.cache_clear()  # (the structs that unpack ids, a few cached whatever the pack)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert pack is not None and len(pack) == OBJECTS + OBJECTS // 100 + 2
    assert held / OBJECTS < 4, f"{held / OBJECTS:.0f} bytes an object"


def test_writing_the_index_of_many_objects_copies_none_of_it(tmp_path: Path) -> None:
    """A version 2 index of 200,000 objects is written from its tables as they are: the peak of what
    Python held while writing it is under 12 bytes an object (its 4-byte offsets and CRCs made, 8; the
    tables joined into one copy as well: 45)."""
    count = 200_000
    names = b"".join(sorted(hashlib.sha1(b"%d" % i).digest() for i in range(count)))
    offsets = array("Q", range(12, 12 + 30 * count, 30))
    crcs = array("I", range(count))
    with open(tmp_path / "p.idx", "wb") as out:
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            git_ingest.write_index_v2(out, names, offsets, crcs, bytes(20))
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    written = (tmp_path / "p.idx").read_bytes()
    assert hashlib.sha1(written[:-20]).digest() == written[-20:]
    assert written[8 + 256 * 4:8 + 256 * 4 + 20 * count] == names
    assert peak / count < 12, f"{peak / count:.0f} bytes an object"


def test_the_columns_of_offsets_and_sizes_take_4_bytes_until_one_is_past_4_gib(tmp_path: Path) -> None:
    """The pack's columns of offsets, lengths, sizes and base offsets are 4 bytes a value (8 held 16 MB
    more for a million tiny objects); a value past 4 GiB makes its column 8 bytes, every value kept."""
    column = array("I", [1, 2])
    assert git_ingest._extended(column, [3, 4], "Q") is column and column.itemsize == 4
    wide = git_ingest._extended(column, [5, 1 << 33, 6], "Q")
    assert wide.itemsize == 8 and list(wide) == [1, 2, 3, 4, 5, 1 << 33, 6]
    signed = git_ingest._extended(array("i", [-1]), [-1, 1 << 31], "q")
    assert list(signed) == [-1, -1, 1 << 31]
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "s.git")], check=True)
    ingest = git_ingest.PackIngest(Repo(str(tmp_path / "s.git")).object_store)
    try:
        assert {ingest._offsets.itemsize, ingest._lengths.itemsize, ingest._sizes.itemsize,
                ingest._base_at.itemsize, ingest._text_at.itemsize} == {4}
    finally:
        ingest.abort()


def test_the_index_fanout_takes_no_pass_over_the_ids_for_each_first_byte(tmp_path: Path) -> None:
    """The ids are sorted: each first byte's count is a bisection, where a count of each byte over
    all the ids (256 passes, 0.07 s of a million's index) was taken; the fan-out is the same."""
    import sys

    count = 50_000
    names = b"".join(sorted(hashlib.sha1(b"%d" % i).digest() for i in range(count)))
    passes: list[str] = []

    def watch(_frame: object, event: str, arg: object) -> None:
        if event == "c_call" and getattr(arg, "__name__", "") == "count":
            passes.append(event)

    with open(tmp_path / "p.idx", "wb") as out:
        sys.setprofile(watch)
        try:
            git_ingest.write_index_v2(out, names, array("I", range(12, 12 + count)), array("I", range(count)), bytes(20))
        finally:
            sys.setprofile(None)
    written = (tmp_path / "p.idx").read_bytes()
    fanout = struct.unpack(">256I", written[8:8 + 1024])
    assert list(fanout) == [sum(1 for at in range(0, len(names), 20) if names[at] <= b) for b in range(256)]
    assert passes == []
