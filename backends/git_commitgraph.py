"""A read-only view of a repository's ``objects/info/commit-graph`` (gitformat-commit-graph(5)).

git writes the file after its ``gc`` (``gc.writeCommitGraph``, true by default; hgwire's repacks
write it as git would): for each commit, sorted by name, its root tree, its parents and its
committer time, so that a walk takes them without inflating and parsing the commit.  A fetch's
walks read the same commits again and again: a shallow client's ``shallow`` lines, its haves in
the negotiation, then their trees in the count of the pack (10,000 haves, each read three times).

Only a single graph file without base graphs is read (a split graph's chain, ``commit-graphs/``,
is left to the commits' own reads), and only its chunks this module needs: OID Fanout, OID
Lookup, Commit Data and, for merges of more than two parents, Extra Edge List.  A file whose
header or chunk table is not such a graph of the repository's hash is not used (the commits are
read), nor one whose trailing checksum does not fit its bytes: a damaged file (a bit flipped, a
write cut short) is ignored, where git's reads trust it and serve the history it says (its
``fsck`` and ``commit-graph verify`` name the commits); hashing the file is about 1.3 ms for
50,000 commits, once a file.  Its contents are otherwise trusted as git trusts them: a commit's
parents, tree and time are those of its id, whichever file says them.

A view is kept per file (its path, inode, size and time): the file mapped, not read, and the first
four bytes of each name (4 bytes a commit), where a look-up's binary search runs.
"""

from __future__ import annotations

import binascii
import hashlib
import mmap
import os
import stat
import struct
import sys
import threading
from array import array
from bisect import bisect_left
from collections import OrderedDict

SIGNATURE = b"CGPH"
VERSION = 1
HASH_VERSIONS = {20: 1, 32: 2}
"""The hash version byte of a graph of SHA-1 (20-byte) and SHA-256 (32-byte) ids."""
CHECKSUMS = {20: "sha1", 32: "sha256"}
"""The hash of the file's trailing checksum, by the length of its ids."""
CHUNK_ENTRY = struct.Struct(">4sQ")
PARENT_NONE = 0x70000000
EXTRA_EDGES = 0x80000000
EDGE_LAST = 0x80000000
MAX_KEPT_GRAPHS = 16
MAX_KEPT_GRAPH_COMMITS = 4_000_000
"""Commits the kept graphs hold together at most (the one read last kept whatever its size): each
costs 20 bytes, its name's first four and its parent and time columns (``CommitGraph``), so sixteen
graphs of a million commits kept 320 MiB; at most 80 now, as pack views are bounded by their
objects (``git_packindex.MAX_CACHED_VIEW_OBJECTS``)."""


class CommitGraph:
    """The commits of one graph file: each one's tree, parents and committer time by its name."""

    def __init__(self, data: mmap.mmap | bytes, raw_len: int, count: int, lookup: int, commits: int,
                 edges: int | None, edge_count: int) -> None:
        self._data = data
        self._raw_len = raw_len
        self._count = count
        self._lookup = lookup
        self._commits = commits
        self._edges = edges
        self._edge_count = edge_count
        self._prefixes = _column(data, lookup, raw_len, count)
        """The first four bytes of each name, as numbers: where ``position``'s binary search runs."""
        stride = raw_len + 16
        self._first = _column(data, commits + raw_len, stride, count)
        self._second = _column(data, commits + raw_len + 4, stride, count)
        self._high = _column(data, commits + raw_len + 8, stride, count)
        self._low = _column(data, commits + raw_len + 12, stride, count)
        """Each commit's first and second parent words and its time's two words, decoded in bulk
        (four C-level copies a column, 2-3 ms for 42,000 commits, once a file): a walk takes a
        commit's links by its position, not through a ``struct`` call and a name's look-up each."""

    def __len__(self) -> int:
        return self._count

    def position(self, binsha: bytes) -> int | None:
        """Where a binary commit name is in the graph, or None."""
        raw_len = self._raw_len
        if len(binsha) != raw_len:
            return None
        prefixes, data, lookup = self._prefixes, self._data, self._lookup
        prefix = int.from_bytes(binsha[:4], "big")
        i = bisect_left(prefixes, prefix)
        while i < self._count and prefixes[i] == prefix:  # (names sharing their first four bytes)
            at = lookup + i * raw_len
            name = data[at:at + raw_len]
            if name == binsha:
                return i
            if name > binsha:
                return None
            i += 1
        return None

    def links(self, hexsha: bytes) -> tuple[bytes, list[bytes], int] | None:
        """The hex names of the commit's tree and parents, and its committer time (as git's graph
        holds it: the time its ``parse_commit`` read, 34 bits); None when the graph lacks it or
        names a parent it does not hold (then the commit is read)."""
        pos = self.position_of(hexsha)
        parents = self.parents_at(pos) if pos is not None else None
        if parents is None:
            return None
        assert pos is not None
        at = self._commits + pos * (self._raw_len + 16)
        return binascii.hexlify(self._data[at:at + self._raw_len]), [self.name_at(p) for p in parents], self.time_at(pos)

    def position_of(self, hexsha: bytes) -> int | None:
        """``position`` of a hex commit name, or None."""
        try:
            return self.position(binascii.unhexlify(hexsha))
        except (binascii.Error, ValueError):
            return None

    def parents_at(self, pos: int) -> list[int] | None:
        """The positions of the parents of the commit at ``pos``; None when the graph names one it
        does not hold (a damaged file: then the commit is read)."""
        count = self._count
        first = self._first[pos]
        if first == PARENT_NONE:
            return []
        if first >= count:
            return None
        second = self._second[pos]
        if second == PARENT_NONE:
            return [first]
        if second & EXTRA_EDGES:
            more = self._extra_edges(second & ~EXTRA_EDGES)
            return None if more is None else [first, *more]
        return [first, second] if second < count else None

    def time_at(self, pos: int) -> int:
        """The committer time of the commit at ``pos`` (34 bits)."""
        return ((self._high[pos] & 0x3) << 32) | self._low[pos]

    def name_at(self, pos: int) -> bytes:
        """The hex name of the commit at ``pos`` (``0 <= pos < len(self)``)."""
        at = self._lookup + pos * self._raw_len
        return binascii.hexlify(self._data[at:at + self._raw_len])

    def _extra_edges(self, index: int) -> list[int] | None:
        """The positions of the second and later parents an octopus merge's Extra Edge List entries name."""
        if self._edges is None:
            return None
        found: list[int] = []
        while index < self._edge_count:
            (value,) = struct.unpack_from(">I", self._data, self._edges + 4 * index)
            pos = value & ~EDGE_LAST
            if pos >= self._count:
                return None
            found.append(pos)
            if value & EDGE_LAST:
                return found
            index += 1
        return None


def _column(data: mmap.mmap | bytes, at: int, stride: int, count: int) -> array[int]:
    """The ``count`` big-endian 32-bit words at ``at``, ``at + stride``, ... as numbers (C-level copies)."""
    words = bytearray(4 * count)
    for k in range(4):
        words[k::4] = data[at + k:at + k + count * stride:stride]
    column = array("I")
    column.frombytes(bytes(words))
    if sys.byteorder == "little":
        column.byteswap()
    return column


def parse_commit_graph(data: mmap.mmap | bytes, raw_len: int) -> CommitGraph | None:
    """The graph ``data`` holds, or None when it is not a single graph file of ``raw_len``-byte ids
    this module reads (another version, hash or layout, base graphs, a chunk missing or cut short,
    a checksum that does not fit)."""
    if len(data) < 8 or data[:4] != SIGNATURE or data[4] != VERSION or data[5] != HASH_VERSIONS.get(raw_len):
        return None
    chunk_count, bases = data[6], data[7]
    if bases:
        return None
    table_end = 8 + CHUNK_ENTRY.size * (chunk_count + 1)
    size = len(data) - raw_len  # (the checksum's bytes follow the chunks)
    if size < table_end:
        return None
    with memoryview(data) as whole, whole[:size] as hashed:
        if hashlib.new(CHECKSUMS[raw_len], hashed).digest() != data[size:]:
            return None
    chunks: dict[bytes, tuple[int, int]] = {}
    for n in range(chunk_count):
        chunk, offset = CHUNK_ENTRY.unpack_from(data, 8 + CHUNK_ENTRY.size * n)
        end = CHUNK_ENTRY.unpack_from(data, 8 + CHUNK_ENTRY.size * (n + 1))[1]
        if offset < table_end or end < offset or end > size:
            return None
        chunks[chunk] = offset, end
    if not {b"OIDF", b"OIDL", b"CDAT"} <= chunks.keys():
        return None
    fanout_at, fanout_end = chunks[b"OIDF"]
    if fanout_end - fanout_at != 256 * 4:
        return None
    count = struct.unpack_from(">I", data, fanout_at + 255 * 4)[0]
    lookup, lookup_end = chunks[b"OIDL"]
    commits, commits_end = chunks[b"CDAT"]
    if lookup_end - lookup != count * raw_len or commits_end - commits != count * (raw_len + 16):
        return None
    edges, edge_count = None, 0
    if b"EDGE" in chunks:
        edges, edges_end = chunks[b"EDGE"]
        if (edges_end - edges) % 4:
            return None
        edge_count = (edges_end - edges) // 4
    return CommitGraph(data, raw_len, count, lookup, commits, edges, edge_count)


def store_commit_graph(store: object, objects_dir: str, raw_len: int) -> CommitGraph | None:
    """``commit_graph`` of a store, unless its repository's config says ``core.commitGraph = false``
    (git then never reads the file): dulwich's ``DiskObjectStore`` holds the setting of the
    repository's own config (``_use_commit_graph``, which its own graph reads honour), and the
    repository's ``upload_settings`` sets it from that config read after the ``[git] config`` file."""
    if not getattr(store, "_use_commit_graph", True):
        return None
    return commit_graph(objects_dir, raw_len)


_KEPT: OrderedDict[tuple[str, int, int, int, int], CommitGraph | None] = OrderedDict()
_KEPT_LOCK = threading.Lock()


def commit_graph(objects_dir: str, raw_len: int) -> CommitGraph | None:
    """The commit-graph of the object directory ``objects_dir`` (``objects/info/commit-graph``), or
    None when it has none this module reads.  Kept while the file stays the same one."""
    path = os.path.join(objects_dir, "info", "commit-graph")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # (a FIFO's open waited for a writer for ever, as git's does)
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # (replaced by a FIFO meanwhile: no wait)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            key = (path, st.st_ino, st.st_size, st.st_mtime_ns, raw_len)
            with _KEPT_LOCK:
                if key in _KEPT:
                    _KEPT.move_to_end(key)
                    return _KEPT[key]
            if not st.st_size:
                graph = None
            else:
                graph = parse_commit_graph(mmap.mmap(fd, 0, access=mmap.ACCESS_READ), raw_len)
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return None
    with _KEPT_LOCK:
        _KEPT[key] = graph
        while len(_KEPT) > 1 and (len(_KEPT) > MAX_KEPT_GRAPHS or _kept_commits() > MAX_KEPT_GRAPH_COMMITS):
            _KEPT.popitem(last=False)  # (the least recently read: a file's map and 20 bytes a commit)
    return graph


def _kept_commits() -> int:
    """The commits of the kept graphs (``_KEPT_LOCK`` held)."""
    return sum(len(graph) for graph in _KEPT.values() if graph is not None)
