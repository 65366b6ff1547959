"""The shared cache of index snapshots on a wide store: small filelogs kept as their bytes."""

from __future__ import annotations

import gc
import os
import tracemalloc

from backends.hg.revlog import (
    FLAG_GENERALDELTA,
    FLAG_INLINE,
    INDEX_ENTRY,
    SHARED_INDEXES,
    IndexCache,
    RevlogCache,
    parse_index,
)
from backends.hg.vfs import FsVfs

INLINE = FLAG_INLINE | FLAG_GENERALDELTA | 1
SPLIT = FLAG_GENERALDELTA | 1


class CountingFsVfs(FsVfs):
    def __init__(self, base: bytes) -> None:
        super().__init__(base)
        self.whole_reads = 0

    def read(self, path: bytes) -> bytes:
        self.whole_reads += 1
        return super().read(path)


def revisions(count: int, header: int, salt: int = 0, inline: bool = True) -> bytes:
    """An index file of ``count`` revisions of 20-byte texts stored uncompressed."""
    out = bytearray()
    for rev in range(count):
        chunk = b"u" + b"content of file %05d" % (rev + salt)
        first = header << 32 if rev == 0 else (rev * len(chunk)) << 16
        entry = INDEX_ENTRY.pack(first, len(chunk), len(chunk) - 1, rev, rev + salt, rev - 1, -1,
                                 (rev * 7919 + salt + 1).to_bytes(20, "big"))
        out += entry + chunk if inline else entry
    return bytes(out)


def test_a_wide_store_s_one_revision_filelogs_cost_little_and_what_they_are_counted(tmp_path: object) -> None:
    """100,000 one-revision filelogs held about 1 KB each (1.4 KB of RSS) and were counted as 400 bytes."""
    vfs = FsVfs(os.fsencode(str(tmp_path)))
    paths = [b"data/d/f%06d.txt.i" % n for n in range(3000)]
    for n, path in enumerate(paths):
        vfs.replace(path, revisions(1, INLINE, salt=n))
    shared = IndexCache(1 << 30)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        cache = RevlogCache(vfs, INLINE, scope=os.fsencode(str(tmp_path)), shared=shared)
        for path in paths:
            assert len(cache.index(path).entries) == 1
        del cache
        gc.collect()
        held = (tracemalloc.get_traced_memory()[0] - before) / len(paths)
    finally:
        if not tracing:
            tracemalloc.stop()
    assert held < 500, f"{held:.0f} bytes held per one-revision filelog"
    counted = shared.held / len(paths)
    assert 0.8 * held < counted < 1.3 * held, f"{held:.0f} bytes held per filelog, {counted:.0f} counted"
    assert SHARED_INDEXES.budget // counted >= 100_000, "the shared budget holds a 100,000-file store's"


def test_a_small_filelog_kept_as_its_bytes_reads_as_parsed_until_its_file_changes(tmp_path: object) -> None:
    vfs = CountingFsVfs(os.fsencode(str(tmp_path)))
    scope = os.fsencode(str(tmp_path))
    shared = IndexCache(1 << 20)
    vfs.replace(b"data/a.i", revisions(1, INLINE))
    vfs.replace(b"data/split.i", revisions(3, SPLIT, inline=False))
    vfs.replace(b"data/five.i", revisions(5, INLINE))
    vfs.replace(b"00changelog.i", revisions(2, SPLIT, inline=False))
    first = RevlogCache(vfs, INLINE, scope, shared)
    indexes = {path: first.index(path) for path in (b"data/a.i", b"data/split.i", b"data/five.i", b"00changelog.i")}
    reads = vfs.whole_reads
    second = RevlogCache(vfs, INLINE, bytes(scope), shared)
    for path, index in indexes.items():
        again = second.index(path)
        assert again == index == parse_index(vfs.read(path), vfs.stamp(path), INLINE)
        assert (again is index) == (path in (b"data/five.i", b"00changelog.i")), path
    assert vfs.whole_reads == reads + len(indexes), "each file read only to compare here"
    assert isinstance(shared.get((scope, b"data/a.i")), bytes)
    vfs.replace(b"dh/long-path-hashed.i", revisions(1, INLINE))  # a filelog whose path is too long
    second.index(b"dh/long-path-hashed.i")
    assert isinstance(shared.get((scope, b"dh/long-path-hashed.i")), bytes)
    # A write (a second revision), then a rollback to the first: each seen by the next open.
    for count in (2, 1):
        vfs.replace(b"data/a.i", revisions(count, INLINE))
        index = RevlogCache(vfs, INLINE, scope, shared).index(b"data/a.i")
        assert index == parse_index(vfs.read(b"data/a.i"), vfs.stamp(b"data/a.i"), INLINE)
        assert len(index.entries) == count
