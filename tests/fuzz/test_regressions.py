"""Inputs the fuzzers found that once let an untyped exception escape (or never returned).

Each case must now end in one of hgwire's typed errors.
"""

from __future__ import annotations

import pytest

from backends.hg.revlog import FLAG_GENERALDELTA, FLAG_INLINE, INDEX_ENTRY, Revlog, parse_index
from backends.hg.vfs import MemoryVfs
from protocols.errors import StorageError

INLINE_GD = FLAG_INLINE | FLAG_GENERALDELTA | 1


def _entry(rev: int, length: int = 0, base: int | None = None, p1: int = -1, p2: int = -1) -> bytes:
    offset_flags = INLINE_GD << 32 if rev == 0 else 0
    return INDEX_ENTRY.pack(offset_flags, length, 0, rev if base is None else base, rev, p1, p2, b"\x01" * 20)


def _read_all(index_bytes: bytes) -> None:
    vfs = MemoryVfs()
    vfs.replace(b"f.i", index_bytes)
    revlog = Revlog(vfs, b"f.i", parse_index(index_bytes, vfs.stamp(b"f.i"), INLINE_GD))
    for rev in range(len(revlog)):
        revlog.parents(revlog.node(rev))
        revlog.revision(rev)


@pytest.mark.parametrize(
    "index_bytes",
    [
        pytest.param(b"\x00", id="shorter-than-header"),
        pytest.param(_entry(0, length=-64), id="inline-length-minus-64-loops-forever"),
        pytest.param(_entry(0, length=-1000), id="inline-negative-length"),
        pytest.param(_entry(0) + _entry(1, base=7), id="delta-base-past-the-end"),
        pytest.param(_entry(0, base=1) + _entry(1, base=0), id="delta-base-cycle"),
        pytest.param(_entry(0) + _entry(1, p1=5), id="parent-past-the-end"),
        pytest.param(_entry(0) + _entry(1, p1=-3), id="negative-parent-indexes-from-the-end"),
    ],
)
def test_revlog_index_corruption_is_a_storage_error(index_bytes: bytes) -> None:
    with pytest.raises(StorageError):
        _read_all(index_bytes)
