"""How a split index's snapshot is known to be the start of the file it grew into (``RevlogCache._grown``):
a lazy index (``revlog.LAZY_ENTRIES``) compares the bytes it holds, with no SHA-256 of them at its
first open; one that let them go (parsed whole) or was never lazy checks a digest, as before.

A property against the digest it replaces: after any rewrite of the file in place (the same inode,
longer than the snapshot: a strip and new revisions, a plain append), the next snapshot is grown
from the old one exactly when the old bytes are still its start, and answers as the file parsed whole.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import revlog
from backends.hg.revlog import (
    FLAG_GENERALDELTA,
    INDEX_ENTRY,
    Index,
    IndexCache,
    RevlogCache,
    index_lineage,
    parse_index,
)
from backends.hg.vfs import FsVfs

HEADER = FLAG_GENERALDELTA | 1


def _entries(start: int, count: int, salt: int = 0) -> bytes:
    out = bytearray()
    for rev in range(start, start + count):
        first = HEADER << 32 if rev == 0 else rev << 16
        node = (rev * 1_000_003 + salt * 7_777_777 + 1).to_bytes(20, "big")
        out += INDEX_ENTRY.pack(first, 1, 1, rev, rev, rev - 1, -1, node)
    return bytes(out)


def _counted_hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    hashed: list[int] = []
    real = hashlib.sha256

    def counted(data: object = b"") -> hashlib._Hash:
        hashed.append(len(memoryview(data)))  # type: ignore[arg-type]
        return real(data)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "sha256", counted)
    return hashed


def test_the_first_open_of_a_lazy_index_hashes_nothing(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 200,000-changeset changelog's first open hashed its 12.8 MB (6 ms of CPU) for a check that
    the bytes the lazy index holds answer; an append by hg is still taken as one (same lineage)."""
    monkeypatch.setattr(revlog, "LAZY_ENTRIES", 8)
    hashed = _counted_hashes(monkeypatch)
    vfs = FsVfs(os.fsencode(str(tmp_path)))
    vfs.replace(b"x.i", _entries(0, 50))
    cache = RevlogCache(vfs, HEADER, scope=b"/first-open", shared=IndexCache(budget=1 << 20))
    before = cache.index(b"x.i")
    assert before.lazy and hashed == []
    lineage = index_lineage(vfs, b"x.i", before)
    assert lineage is not None
    vfs.append(b"x.i", _entries(50, 3))  # an append by hg
    grown = cache.index(b"x.i")
    assert grown.lazy and len(grown) == 53 and hashed == []
    assert index_lineage(vfs, b"x.i", grown) == lineage
    assert grown.entries == parse_index(vfs.read(b"x.i"), None, HEADER).entries


def _rewrite(path: str, keep: int, added: bytes) -> None:
    """Truncate in place to ``keep`` entries, then append (what a strip and new revisions do)."""
    os.truncate(path, keep * INDEX_ENTRY.size)
    with open(path, "ab") as f:
        f.write(added)


@settings(max_examples=60, deadline=None)
@given(count=st.integers(min_value=9, max_value=40), data=st.data(), parsed_whole=st.booleans(),
       lazy=st.booleans(), pushed=st.integers(min_value=0, max_value=3))
def test_a_snapshot_is_grown_exactly_when_its_bytes_are_the_file_s_start(
        count: int, data: st.DataObject, parsed_whole: bool, lazy: bool, pushed: int) -> None:
    """``pushed``: entries this process appended itself first (``RevlogCache.appended``: a lazy
    snapshot after them holds them apart from the bytes it read, ``Index.appended_by``)."""
    keep = data.draw(st.integers(min_value=1, max_value=count), label="kept entries")
    salt = data.draw(st.integers(min_value=0, max_value=2), label="salt of the new entries")  # 0: the same ones
    more = data.draw(st.integers(min_value=count - keep + 1, max_value=count - keep + 6), label="new entries")
    real_lazy = revlog.LAZY_ENTRIES
    revlog.LAZY_ENTRIES = 8 if lazy else 4096
    try:
        with tempfile.TemporaryDirectory() as tmp:
            vfs = FsVfs(os.fsencode(tmp))
            vfs.replace(b"x.i", _entries(0, count))
            cache = RevlogCache(vfs, HEADER, scope=os.fsencode(tmp), shared=IndexCache(budget=1 << 20))
            before = cache.index(b"x.i")
            assert before.lazy == lazy
            if pushed:  # (as a push's writer hands its snapshot over)
                added = _entries(count, pushed, salt=3)
                grown = (before.appended_by(added, None) if lazy else
                         Index(before.entries + list(INDEX_ENTRY.iter_unpack(added)), HEADER, None, None))
                vfs.append(b"x.i", added)
                cache.appended(b"x.i", before, added, grown)
                before = cache.index(b"x.i")
                assert len(before) == count + pushed and (before.packed_parts is not None) == lazy
                assert before.entries[-1] == INDEX_ENTRY.unpack(added[-INDEX_ENTRY.size:]) if parsed_whole else True
                count += pushed
            old_bytes = vfs.read(b"x.i")
            if parsed_whole:
                before.entries  # noqa: B018  (a lazy one lets its bytes go)
            lineage = index_lineage(vfs, b"x.i", before)
            _rewrite(os.path.join(tmp, "x.i"), keep, _entries(keep, more, salt))
            after = cache.index(b"x.i")
            new_bytes = vfs.read(b"x.i")
            whole = parse_index(new_bytes, None, HEADER)
            assert after.entries == whole.entries and after.nodemap() == whole.nodemap()
            assert after.nodes() == whole.nodes() and after.parent_columns() == whole.parent_columns()
            # what the digest decided: the same lineage (grown) exactly when the old bytes are the start
            same = hashlib.sha256(new_bytes[:len(old_bytes)]).digest() == hashlib.sha256(old_bytes).digest()
            assert (index_lineage(vfs, b"x.i", after) == lineage) == same
    finally:
        revlog.LAZY_ENTRIES = real_lazy
