"""Revlogs: reading the v1 index and data, and appending revisions.

Format: helptext/internals/revlogs.txt.  An index entry is 64 big-endian bytes
(offset<<16|flags, compressed length, raw length, base rev, link rev, p1 rev,
p2 rev, node padded to 32 bytes); the first 4 bytes of entry 0 are overlaid by
the version header.  Inline revlogs interleave each entry with its data in the
``.i`` file; split ones keep data in ``.d``.

An :class:`Index` is an immutable snapshot.  Readers keep the one they started
with, so a concurrent append (or an inline->split conversion, which replaces
the ``.i``) never changes what a running read sees: inline revlogs are small by
definition (under 128 KiB of data) and are held in memory whole, and ``.d``
files only ever grow.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
import sys
import tempfile
import threading
import zlib
from array import array
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import IO, BinaryIO, Protocol, cast, overload

import zstandard

from backends.hg import kept, mpatch
from backends.hg.vfs import Stamp, Vfs
from backends.interfaces import NULL_NODE, Node
from backends.lru import BudgetPool, LruCache
from protocols.errors import StorageError

INDEX_ENTRY = struct.Struct(">Qiiiiii20s12x")
ENTRY_SIZE = INDEX_ENTRY.size
PARENT_REVS = itemgetter(5, 6)
"""An index entry's (p1, p2) revisions."""
VERSION_REVLOGV1 = 1
FLAG_INLINE = 1 << 16
FLAG_GENERALDELTA = 1 << 17
KNOWN_HEADER_FLAGS = FLAG_INLINE | FLAG_GENERALDELTA
MAX_INLINE = 131072
"""Data size at which an inline revlog is split into ``.i`` + ``.d`` (revlog.py ``_maxinline``)."""
NULL_REV = -1
READ_WINDOW = 256 << 10
"""Largest span of a ``.d`` file read in one go when walking many revisions."""
READ_GAP = 64 << 10
"""Unwanted bytes a window may skip over rather than start a new read."""
MAX_CHAIN_LENGTH = 1000
"""Longest delta chain we write, as Mercurial's default (``format.maxchainlen`` unset: 1,000 for a
sparse revlog); sparse-revlog readers accept any length."""
SHORT_CHAIN_LENGTH = 200
"""Longest chain of a text too large for ``MAX_CHAIN_LENGTH`` links within ``CHAIN_COPY_BYTES``."""
CHAIN_COPY_BYTES = 256 << 20
"""Text copies a read of a revision would make applying its chain link by link (each link copies
the text once): a chain may be as long as this over the text's size allows, from
``SHORT_CHAIN_LENGTH`` to ``MAX_CHAIN_LENGTH`` (1,000 links for texts up to 256 KiB, 200 past
1.3 MiB).  ``mpatch.patches`` folds runs of links and builds the text once a run, so a read
copies far less (a 2 MiB text's 200 links: the text 4 times)."""


CHAIN_SLACK = 1024
"""Compressed bytes a delta chain may hold past twice its text: a small text's chain (a 2 KiB
manifest's) may go on some links where Mercurial's would start an intermediate snapshot."""
SPAN_TO_TEXT = 4
"""In a generaldelta revlog that is not sparse, how many times its text the bytes from a delta
chain's first chunk to its last may span: hg reads that span whole (revlogutils/deltas.py
``_is_good_delta_info_chain_quality``, ``textlen * 4``); a sparse revlog's readers skip the gaps."""


def chain_limit(text_size: int) -> int:
    """The longest delta chain a revision of ``text_size`` bytes may end."""
    return min(MAX_CHAIN_LENGTH, max(SHORT_CHAIN_LENGTH, CHAIN_COPY_BYTES // max(text_size, 1)))

Entry = tuple[int, int, int, int, int, int, int, bytes]
"""offset_flags, compressed length, raw length, base, linkrev, p1, p2, node (32 bytes)."""


REVIDX_EXTSTORED = 1 << 13
"""A revision flag: the stored text is a pointer to content kept elsewhere (hg's ``lfs`` extension);
the node is the hash of that content, which the server does not hold in the revlog."""
REVIDX_HASCOPIESINFO = 1 << 12
"""A changelog revision flag: the changeset records its copies in its sidedata (a client with
``format.exp-use-copies-side-data-changeset``).  It changes nothing of the text or its hash: hg keeps it
in the index of a repository without sidedata and sends it on in changegroup 03, and so does hgwire."""


def node_hash(text: bytes, p1: Node, p2: Node) -> Node:
    """sha1(min(p1, p2) + max(p1, p2) + text): the identity of a revision."""
    a, b = (p1, p2) if p1 < p2 else (p2, p1)
    h = hashlib.sha1(a)
    h.update(b)
    h.update(text)
    return Node(h.digest())


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


_zstd_local = threading.local()


def _zstd_decompress(chunk: bytes) -> bytes:
    """One zstd frame, with a decompression context kept per thread.

    A new context per chunk nearly doubled the cost of a chunk (8.8 against 4.7 µs
    for the 300-byte chunks of the bench store), and a clone reads one chunk per
    revision it sends.  A context serves one thread at a time.
    """
    dctx: zstandard.ZstdDecompressor | None = getattr(_zstd_local, "dctx", None)
    if dctx is None:
        dctx = _zstd_local.dctx = zstandard.ZstdDecompressor()
    try:
        return dctx.decompress(chunk)
    except zstandard.ZstdError:
        # Mercurial and hgwire write the content size into each frame; a frame
        # without it (another writer's) needs the streaming decoder.
        stream = dctx.decompressobj()
        text = stream.decompress(chunk)
        if not stream.eof:
            raise zstandard.ZstdError("the frame is cut short") from None
        return text


def decompress(chunk: bytes) -> bytes:
    """Decode one stored chunk by its first byte (revlogs.txt "Compression")."""
    if not chunk:
        return b""
    head = chunk[:1]
    try:
        if head == b"x":
            return zlib.decompress(chunk)
        if head == b"\0":
            return chunk
        if head == b"u":
            return chunk[1:]
        if chunk[:4] == _ZSTD_MAGIC:
            return _zstd_decompress(chunk)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise StorageError(f"corrupt revlog chunk: {exc}") from exc
    raise StorageError(f"unknown revlog compression header {head!r}")


COMPRESS_STEP = 1 << 20
"""A text larger than this is compressed in steps of this size."""

STREAMED_TEXT = 1 << 20
"""A text stored whole that is this large or larger is sent a piece at a time (``Revlog.text_pieces``)."""

TEXT_STEP = 1 << 20
"""Bytes of a stored chunk read, and of its text given, at a time by ``Revlog.text_pieces``."""


class _StepReader:
    """A ``read(n)`` over an iterator of byte strings (what zstd's streaming reader takes)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._held = b""

    def read(self, size: int = -1) -> bytes:
        if not self._held:
            self._held = next(self._pieces, b"")
        if size < 0 or size >= len(self._held):
            data, self._held = self._held, b""
            return data
        data, self._held = self._held[:size], self._held[size:]
        return data


class Compressor:
    """Compress chunks the way the repository's requirements say (zstd, zlib, or none)."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self._zstd = zstandard.ZstdCompressor(level=3) if engine == "zstd" else None

    def compress(self, data: bytes) -> bytes:
        """Return the chunk to store: compressed if that helps, else raw with a ``u``/``\\0`` marker."""
        if len(data) >= 50 and self.engine != "none":
            packed = self._packed(data) if len(data) > COMPRESS_STEP else (
                self._zstd.compress(data) if self._zstd else zlib.compress(data))
            if packed is not None and len(packed) < len(data):
                return packed
        if not data or data[:1] == b"\0":
            return data
        return b"u" + data

    def _packed(self, data: bytes) -> bytes | None:
        """A large text compressed a step at a time (as Mercurial does past 1 MB): what is held
        is the output so far, not a buffer the size of the text; None once it cannot be smaller.
        A zstd frame still names its size, so readers take it in one call."""
        stream = self._zstd.compressobj(size=len(data)) if self._zstd else zlib.compressobj()
        view = memoryview(data)
        out: list[bytes] = []
        held = 0
        for pos in range(0, len(data), COMPRESS_STEP):
            piece = stream.compress(view[pos:pos + COMPRESS_STEP])
            held += len(piece)
            if held >= len(data):
                return None
            if piece:
                out.append(piece)
        out.append(stream.flush())
        return b"".join(out)


class Index:
    """An immutable parsed index; ``inline_data`` is the whole ``.i`` when inline.

    Slotted, and its node map built only for more than ``SCANNED_ENTRIES`` entries: a wide store's
    shared cache held 100,000 snapshots of one entry each, and a ``__dict__`` and a node map
    made each take 1,160 bytes instead of 960.  Never assigned to once made (snapshots are shared
    between threads) but for what it works out when first asked (its entries, columns, node map:
    each the same whoever works it out), and not frozen: a small filelog's is made anew at each use
    from the bytes the shared cache keeps (``IndexCache``), and a frozen one took 0.8 µs to make
    instead of 0.25 (0.06 s more for each listing or clone of 100,000 files).

    A split index of more than ``LAZY_ENTRIES`` entries (``parse_index``) keeps its file's bytes
    and parses an entry only when asked (``entry``), as hg's C index does: the first open of a
    200,000-changeset changelog parsed it into 200,000 tuples (55 ms) and built its node map whole
    (40 ms) though a push reads a few entries.  What reads every revision takes columns read from
    the bytes by C-level passes (``nodes``, ``parent_columns``); a node is found by scanning the
    nodes' first 4 bytes (``find``), until ``MAPPED_AFTER_SCANS`` scans, when the node map pays for
    itself.
    ``entries`` still gives the list (parsed whole at the first use), and past
    ``len // 8 + 256`` single entries asked the list is made for the rest."""

    __slots__ = ("_count", "_digest", "_list", "_mapped", "_nodemap", "_nodes", "_packed", "_parents", "_prefixes",
                 "_reads", "_scans", "_tail", "header", "inline_data", "stamp")

    def __init__(self, entries: list[Entry] | None, header: int, stamp: Stamp | None, inline_data: bytes | None,
                 _nodemap: dict[bytes, int] | None = None, packed: bytes | None = None, tail: bytes = b"") -> None:
        """``entries``, or None and ``packed``: the entries as a split index's file holds them (the
        header over the first entry's offset), parsed when asked; ``tail``: packed entries after
        those (what this process appended to the file since it read ``packed``, ``appended_by``)."""
        self._list = entries
        self.header = header
        self.stamp = stamp
        self.inline_data = inline_data
        self._nodemap: dict[bytes, int] = {} if _nodemap is None else _nodemap
        self._packed = packed if entries is None else None
        self._tail = tail if entries is None and packed is not None else b""
        """Read before ``_packed`` (``entries`` lets go of it after): a reader that finds the bytes
        then finds the tail that goes with them."""
        self._count = (len(entries) if entries is not None else (len(packed or b"") + len(self._tail)) // ENTRY_SIZE)
        """How many entries (a list given is never added to after)."""
        self._nodes: bytes | None = None
        self._prefixes: bytes | None = None
        """The first 4 bytes of every entry's node, joined (a lazy index's ``find`` scans them)."""
        self._parents: tuple[array[int], array[int]] | None = None
        self._scans = 0
        self._reads = 0
        self._digest: hashlib._Hash | None = None
        """SHA-256 of the file's bytes it was parsed from, taken when a lazy index lets go of them
        (``entries``): what ``RevlogCache._grown`` then checks them by (``_APPENDS``)."""
        self._mapped = False
        """Its node map was built for every revision, though shorter than its count: a damaged index
        gives a node twice (each lookup rebuilt it, 1.6 ms a lookup of 200,000 changesets)."""

    def __repr__(self) -> str:
        return f"Index({len(self)} entries, header={self.header:#x}, stamp={self.stamp!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Index):
            return NotImplemented
        return (self.header, self.stamp, self.inline_data, len(self)) == (
            other.header, other.stamp, other.inline_data, len(other)) and self.entries == other.entries

    __hash__ = None  # type: ignore[assignment]  # (as the dataclass it was: compared by value)

    def __len__(self) -> int:
        return self._count

    @property
    def lazy(self) -> bool:
        """Whether its entries are still read from its file's bytes as asked (not parsed whole)."""
        return self._list is None

    @property
    def entries(self) -> list[Entry]:
        """Every entry, parsed whole at the first use of a lazy index.

        The index then holds what one parsed whole from the start holds: its file's bytes go (64
        bytes an entry: a reader that took them before still reads them) and a node map built
        before is keyed by the entries' nodes, not bytes objects of its own (56 bytes an entry):
        524 bytes an entry were held where a whole parse holds 373."""
        tail = self._tail
        packed = self._packed  # (before the list: a reader finding no bytes finds the list)
        found = self._list
        if found is None:
            assert packed is not None
            found = list(INDEX_ENTRY.iter_unpack(packed))
            if tail:
                found += INDEX_ENTRY.iter_unpack(tail)
            if found:
                found[0] = (found[0][0] & 0xFFFF,) + found[0][1:]
            if len(self._nodemap) == len(found):
                self._nodemap = dict(zip(map(_NODE, found), range(len(found))))
            if self._digest is None:  # (before the bytes go: an append is then checked against this)
                digest = hashlib.sha256(packed)
                digest.update(tail)
                self._digest = digest
            self._list = found
            self._packed = None
            self._tail = b""
            self._prefixes = None  # (its node map answers now)
        return found

    @property
    def parsed(self) -> list[Entry] | None:
        """The entries if parsed whole (always, but for a lazy index not yet asked for them all)."""
        return self._list

    @property
    def packed(self) -> bytes | None:
        """The entries as the file holds them, for an index parsed lazily (let go once parsed
        whole, ``entries``); None for one made from its entries or parsed whole since.  Joined
        (a copy) where entries were appended to it (``appended_by``): see ``packed_parts``."""
        tail = self._tail
        packed = self._packed
        return packed + tail if packed is not None and tail else packed

    @property
    def packed_parts(self) -> tuple[bytes, bytes] | None:
        """(the file's bytes it read, the entries appended since) of a lazy index, else None."""
        tail = self._tail
        packed = self._packed
        return None if packed is None else (packed, tail)

    def entry(self, rev: int) -> Entry:
        """The entry of ``rev`` (an ``IndexError`` past either end, as ``entries[rev]``)."""
        tail = self._tail
        packed = self._packed
        found = self._list
        if found is not None or packed is None:
            return (found if found is not None else self.entries)[rev]
        count = self._count
        if rev < 0:
            rev += count
        if not 0 <= rev < count:
            raise IndexError("revlog index out of range")
        self._reads += 1
        if self._reads > (count >> 3) + 256:  # read all over: the list answers the rest faster
            return self.entries[rev]
        at = rev * ENTRY_SIZE
        if at >= len(packed):
            return INDEX_ENTRY.unpack_from(tail, at - len(packed))
        entry: Entry = INDEX_ENTRY.unpack_from(packed, at)
        return entry if rev else (entry[0] & 0xFFFF, *entry[1:])

    def node(self, rev: int) -> bytes:
        """The node of ``rev`` (20 bytes), without parsing its entry."""
        nodes = self._nodes
        if nodes is not None:
            return nodes[rev * 20:rev * 20 + 20] if 0 <= rev < self._count else self.entry(rev)[7][:20]
        if self._list is not None:
            return self._list[rev][7][:20]
        return self.entry(rev)[7][:20]

    @property
    def inline(self) -> bool:
        return bool(self.header & FLAG_INLINE)

    @property
    def generaldelta(self) -> bool:
        return bool(self.header & FLAG_GENERALDELTA)

    def restamped(self, header: int, stamp: Stamp | None) -> Index:
        """The same entries (and what was worked out of them) with another header and stamp."""
        tail = self._tail
        packed = self._packed
        index = Index(self._list, header, stamp, self.inline_data, self._nodemap, packed, tail)
        index._nodes, index._parents, index._digest = self._nodes, self._parents, self._digest
        index._prefixes = self._prefixes
        return index

    def carried(self, older: Index) -> Index:
        """This index, made of ``older``'s entries and more, given ``older``'s node and parent
        columns extended by the others (not made again from the whole list); itself."""
        added = self.entries[len(older):]
        if older._nodes is not None:
            self._nodes = older._nodes + _joined_nodes(added)
        if older._parents is not None:
            p1, p2 = older._parents
            self._parents = (p1 + array("i", map(_P1, added)), p2 + array("i", map(_P2, added)))
        return self

    def grown(self, packed: bytes, stamp: Stamp | None) -> Index:
        """A lazy index of ``packed``: this one's file's bytes, then more entries; what was worked
        out of this one (node column, parents, node map) is carried and extended by the new ones."""
        return self._carried_into(Index(None, self.header, stamp, None, None, packed), packed[len(self) * ENTRY_SIZE:])

    def appended_by(self, added: bytes, stamp: Stamp | None, parts: tuple[bytes, bytes] | None = None) -> Index:
        """This lazy index with ``added`` (packed entries) after its entries: its file's bytes are
        shared, not copied (a push into 200,000 changesets copied the changelog's 12.8 MB and the
        manifest's to make the snapshot after it: 7 ms of CPU), the entries added held apart (as
        hg's C index holds those added to it); what was worked out of it is carried, as by ``grown``.
        ``parts``: its ``packed_parts`` as the caller found them (another thread may parse it whole
        meanwhile, letting them go)."""
        if parts is None:
            parts = self.packed_parts
        assert parts is not None
        packed, tail = parts
        return self._carried_into(Index(None, self.header, stamp, None, None, packed, tail + added), added)

    def _carried_into(self, index: Index, added: bytes) -> Index:
        """``index``, this one with the packed entries ``added``, given this one's columns and node
        map extended by them."""
        new = Index(None, self.header, None, None, None, added)
        if self._nodes is not None:
            index._nodes = self._nodes + new.nodes()
        if self._prefixes is not None:
            index._prefixes = self._prefixes + _prefix_column(added)
        if self._parents is not None:
            p1, p2 = self._parents
            n1, n2 = new.parent_columns()
            index._parents = (p1 + n1, p2 + n2)
        if len(self._nodemap) == len(self):  # (copied once, extended by the new nodes: ``nodemap`` copied it again)
            nodemap = dict(self._nodemap)
            nodes, first, count = new.nodes(), len(self), len(new)
            for start in range(0, count, NODE_BATCH):
                stop = min(start + NODE_BATCH, count)
                nodemap.update(zip(_node_batch(stop - start).unpack_from(nodes, start * 20),
                                   range(first + start, first + stop)))
            index._nodemap = nodemap
            index._mapped = True
        return index

    def nodes(self) -> bytes:
        """Every revision's node joined (20 bytes each): copied out of the file's bytes by five
        strided C-level copies for a lazy index, else joined from the entries."""
        nodes = self._nodes
        if nodes is None:
            tail = self._tail
            packed = self._packed
            found = self._list
            nodes = _node_column(packed) if found is None else _joined_nodes(found)
            if found is None and tail:
                nodes += _node_column(tail)
            self._nodes = nodes
        return nodes

    def node_prefixes(self, count: int) -> bytes:
        """The first 4 bytes of the first ``count`` revisions' nodes, joined: a lazy index's node
        prefixes (``find``), else from the node column."""
        prefixes = self._prefixes
        if prefixes is None and self._packed is not None:
            prefixes = self._prefix_column()
        if prefixes is not None:
            return prefixes if count * 4 == len(prefixes) else prefixes[:4 * count]
        return memoryview(self.nodes()).cast("I")[0:5 * count:5].tobytes()

    def _prefix_column(self) -> bytes | None:
        """The node prefixes of a lazy index (``find``), made at the first use and kept; None once
        it is parsed whole."""
        prefixes = self._prefixes
        if prefixes is None:
            tail = self._tail
            packed = self._packed
            if packed is None:
                return None
            prefixes = _prefix_column(packed) + _prefix_column(tail) if tail else _prefix_column(packed)
            self._prefixes = prefixes
        return prefixes

    def parent_columns(self) -> tuple[array[int], array[int]]:
        """(p1, p2) of every revision, as two ``array('i')``: read from the file's bytes by C-level
        passes for a lazy index."""
        found = self._parents
        if found is None:
            tail = self._tail
            packed = self._packed
            entries = self._list
            if entries is None:
                words = memoryview(packed or b"").cast("I")
                p1, p2 = array("i", words[6::16].tobytes()), array("i", words[7::16].tobytes())
                if tail:
                    words = memoryview(tail).cast("I")
                    p1.frombytes(words[6::16].tobytes())
                    p2.frombytes(words[7::16].tobytes())
                if sys.byteorder == "little":
                    p1.byteswap()
                    p2.byteswap()
            else:
                p1, p2 = array("i", map(_P1, entries)), array("i", map(_P2, entries))
            found = self._parents = (p1, p2)
        return found

    def nodemap(self) -> dict[bytes, int]:
        """node -> rev, built on first use and kept with the snapshot (from the entries' nodes when
        parsed whole, else by C-level passes over the node column); of a node given twice, the last."""
        count = len(self)
        if len(self._nodemap) != count and not self._mapped:
            done = len(self._nodemap)
            nodemap = dict(self._nodemap)
            if self._list is not None:  # (its entries' nodes are the keys: no bytes object more)
                nodemap.update((e[7][:20], rev) for rev, e in enumerate(self._list[done:], done))
            else:
                nodes = self.nodes()
                for start in range(done, count, NODE_BATCH):
                    stop = min(start + NODE_BATCH, count)
                    nodemap.update(zip(_node_batch(stop - start).unpack_from(nodes, start * 20), range(start, stop)))
            self._nodemap = nodemap
            self._mapped = True
        return self._nodemap

    def lookup(self) -> NodeLookup:
        """node -> rev as a read-only mapping that finds each node as ``find`` does (no node map
        built for a few lookups of a lazy index)."""
        return NodeLookup(self)

    def find(self, node: bytes) -> int | None:
        """The revision of ``node`` (the last, should it be there twice), or None: the node map's
        answer once built, else a scan, the map built at the ``MAPPED_AFTER_SCANS``-th (or at once
        for an index that is not lazy).

        A lazy index scans its node prefixes (each entry's node's first 4 bytes, joined: one strided
        C-level copy out of its file's bytes, made at the first scan and kept), from the last, and
        compares the whole node where 4 bytes match at an entry's place.  A push of 30 changesets
        into 200,000 asks the changelog for each pushed node, which is not there: a scan of the
        file's bytes (12.8 MB) cost 1.2 ms, and past 16 the node map was built (40 ms of CPU); one
        of the prefixes (800 KB) costs 0.16 ms."""
        if self._mapped:  # (set after its map: read first, the map is the one it names)
            return self._nodemap.get(node)
        nodemap = self._nodemap
        if len(nodemap) == self._count:
            return nodemap.get(node)
        if self._list is not None or len(node) != 20 or self._scans >= MAPPED_AFTER_SCANS:
            return self.nodemap().get(node)
        self._scans += 1
        tail = self._tail
        packed = self._packed
        prefixes = self._prefix_column()
        if packed is None or prefixes is None:  # (parsed whole meanwhile by another thread)
            return self.nodemap().get(node)
        key = node[:4]
        split = len(packed)
        end = len(prefixes)
        while True:
            at = prefixes.rfind(key, 0, end)
            if at < 0:
                return None
            if not at & 3:
                place = at * (ENTRY_SIZE // 4) + NODE_OFFSET
                if (packed.startswith(node, place) if place < split else tail.startswith(node, place - split)):
                    return at >> 2
            end = at + 3


class NodeLookup(Mapping[bytes, int]):
    """An index's node -> rev (``Index.lookup``): each node found by ``Index.find``."""

    __slots__ = ("_index",)

    def __init__(self, index: Index) -> None:
        self._index = index

    def __getitem__(self, node: bytes) -> int:
        found = self._index.find(node)
        if found is None:
            raise KeyError(node)
        return found

    def get(self, node: bytes, default: int | None = None) -> int | None:  # type: ignore[override]
        found = self._index.find(node)
        return default if found is None else found

    def __contains__(self, node: object) -> bool:
        return isinstance(node, bytes) and self._index.find(node) is not None

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._index.nodemap())

    def __len__(self) -> int:
        return len(self._index.nodemap())


LAZY_ENTRIES = 4096
"""A split index of more entries than this is parsed lazily (``Index``)."""
NODE_OFFSET = 32
"""Where an index entry's node starts in its 64 bytes."""
MAPPED_AFTER_SCANS = 128
"""Scans of a lazy index's node prefixes (``Index.find``) before its node map is built: a scan of
200,000 costs about a two-hundredth of building the map (0.16 ms, 35 ms and the node column's 3.5)."""
NODE_BATCH = 4096
"""Nodes made into bytes objects by one C-level call when a node map is built."""

_P1 = itemgetter(5)
_P2 = itemgetter(6)
_NODE = itemgetter(7)
_NODE_BATCHES: dict[int, struct.Struct] = {}


def _node_batch(count: int) -> struct.Struct:
    found = _NODE_BATCHES.get(count)
    if found is None:
        found = struct.Struct("20s" * count)
        if len(_NODE_BATCHES) < 64:
            _NODE_BATCHES[count] = found
    return found


def _prefix_column(packed: bytes) -> bytes:
    """The first 4 bytes of the nodes of packed entries, joined."""
    return memoryview(packed).cast("I")[NODE_OFFSET // 4::16].tobytes()


def _node_column(packed: bytes | None) -> bytes:
    """The nodes of packed entries, joined: each entry's bytes 32-51, five 4-byte words a node."""
    words = memoryview(packed or b"").cast("I")
    column = bytearray(len(words) // 16 * 20)
    out = memoryview(column).cast("I")
    for word in range(5):
        out[word::5] = words[8 + word::16]
    return bytes(column)


def _joined_nodes(entries: Sequence[Entry]) -> bytes:
    """The nodes of parsed entries, joined (a writer's entries pad a node to 32 bytes: cut to 20)."""
    joined = b"".join(map(_NODE, entries))
    if len(joined) != 20 * len(entries):
        joined = b"".join(node[:20] for node in map(_NODE, entries))
    return joined


SCANNED_ENTRIES = 4
"""An index of at most this many entries finds a node's revision by looking at each, without a
node map (``Revlog.rev``)."""


def parse_index(data: bytes, stamp: Stamp | None, default_header: int) -> Index:
    """Parse a whole ``.i`` file; an empty file is an empty revlog with ``default_header``."""
    if not data:
        return Index([], default_header, stamp, b"" if default_header & FLAG_INLINE else None)
    if len(data) < 4:
        raise StorageError("corrupt revlog index: shorter than its header")
    header = struct.unpack(">I", data[:4])[0]
    version = header & 0xFFFF
    if version != VERSION_REVLOGV1:
        raise StorageError(f"unsupported revlog version {version}")
    if header & ~0xFFFF & ~KNOWN_HEADER_FLAGS:
        raise StorageError(f"unsupported revlog flags {header >> 16:#x}")
    if header & FLAG_INLINE:
        entries = _parse_inline(data)
        inline_data: bytes | None = data
    else:
        # A trailing partial entry is an append in progress by a writer: not there yet.
        usable = len(data) - len(data) % ENTRY_SIZE
        if usable > LAZY_ENTRIES * ENTRY_SIZE:
            return Index(None, header, stamp, None, packed=bytes(data[:usable]))
        entries = list(INDEX_ENTRY.iter_unpack(memoryview(data)[:usable]))
        inline_data = None
    if entries:
        first = entries[0]
        entries[0] = (first[0] & 0xFFFF,) + first[1:]
    return Index(entries, header, stamp, inline_data)


def _parse_inline(data: bytes) -> list[Entry]:
    entries: list[Entry] = []
    pos = 0
    size = len(data)
    unpack = INDEX_ENTRY.unpack_from
    while pos + ENTRY_SIZE <= size:
        entry = unpack(data, pos)
        if entry[1] < 0:
            # A negative length would move backwards: a loop that never ends.
            raise StorageError("corrupt inline revlog: negative chunk length")
        if pos + ENTRY_SIZE + entry[1] > size:
            break  # an append in progress by a writer: this revision is not there yet
        entries.append(entry)
        pos += ENTRY_SIZE + entry[1]
    return entries


class Revlog:
    """Read access to one revlog through a snapshot of its index."""

    def __init__(self, vfs: Vfs, index_path: bytes, index: Index, logical: bytes | None = None) -> None:
        self.vfs = vfs
        self.index_path = index_path
        self.data_path = index_path[:-2] + b".d"
        self.logical_index = logical or index_path
        """The unencoded store path (``data/<file>.i``) that journals record."""
        self.logical_data = self.logical_index[:-2] + b".d"
        self.index = index
        self._cache: tuple[int, bytes] | None = None

    def __len__(self) -> int:
        return self.index._count

    def tip(self) -> int:
        return self.index._count - 1

    def node(self, rev: int) -> Node:
        if rev == NULL_REV:
            return NULL_NODE
        entries = self.index._list  # (an index parsed whole, as most are, indexed here: no call per revision)
        if entries is not None:
            return entries[rev][7][:20]  # type: ignore[return-value]  # (a Node: no call to say so, per revision)
        return self.index.node(rev)  # type: ignore[return-value]

    def rev(self, node: bytes) -> int:
        """Revision number of ``node``; raise KeyError if absent."""
        if node == NULL_NODE:
            return NULL_REV
        index = self.index
        if len(index) > SCANNED_ENTRIES or len(node) != 20:
            found = index.find(node)
            if found is None:
                raise KeyError(node)
            return found
        entries = index.entries
        for rev in range(len(entries) - 1, -1, -1):  # a filelog's one or two revisions: no node map to
            if entries[rev][7][:20] == node:  # keep; the last of a node given twice, as the node map has it
                return rev
        raise KeyError(node)

    def has_node(self, node: bytes) -> bool:
        return node == NULL_NODE or self.index.find(node) is not None

    def parent_revs(self, rev: int) -> tuple[int, int]:
        entries = self.index._list
        e = entries[rev] if entries is not None else self.index.entry(rev)
        # Parents precede their child; anything else (a negative index included) is corruption.
        if not (NULL_REV <= e[5] < rev and NULL_REV <= e[6] < rev):
            raise StorageError(f"corrupt revlog index: revision {rev} has parents {e[5]}, {e[6]}")
        return e[5], e[6]

    def parents(self, node: Node) -> tuple[Node, Node]:
        p1, p2 = self.parent_revs(self.rev(node))
        return self.node(p1), self.node(p2)

    def linkrev(self, rev: int) -> int:
        entries = self.index._list
        return (entries[rev] if entries is not None else self.index.entry(rev))[4]

    def flags(self, rev: int) -> int:
        entries = self.index._list
        return (entries[rev] if entries is not None else self.index.entry(rev))[0] & 0xFFFF

    def raw_size(self, rev: int) -> int:
        entries = self.index._list
        return (entries[rev] if entries is not None else self.index.entry(rev))[2]

    def delta_parent(self, rev: int) -> int:
        """The revision the stored chunk of ``rev`` is a delta against, or NULL_REV for a full text."""
        entries = self.index._list
        base = (entries[rev] if entries is not None else self.index.entry(rev))[3]
        if base == rev:
            return NULL_REV
        return base if self.index.generaldelta else rev - 1

    def _chunk_span(self, rev: int) -> tuple[int, int]:
        entries = self.index._list
        entry = entries[rev] if entries is not None else self.index.entry(rev)
        start = entry[0] >> 16
        if self.index.inline:
            start += (rev + 1) * ENTRY_SIZE
        return start, entry[1]

    def raw_chunk(self, rev: int) -> bytes:
        """The stored (compressed) chunk of ``rev``."""
        start, length = self._chunk_span(rev)
        if self.index.inline_data is not None:
            return self.index.inline_data[start : start + length]
        data = self.vfs.read_range(self.data_path, start, length)
        if len(data) != length:
            raise StorageError(f"revlog {self.data_path!r} is truncated")
        return data

    def raw_chunks(self, revs: Sequence[int]) -> Iterator[bytes]:
        """Stored chunks of ``revs`` (ascending), one read per window of nearby chunks.

        A window grows while the next chunk starts within ``READ_GAP`` of its
        end and the window stays under ``READ_WINDOW``, so a walk over many
        small revisions opens the ``.d`` file a few times instead of once per
        revision, and memory stays bounded by one window (or one large chunk).
        """
        return cast(Iterator[bytes], self._windowed_chunks(revs, False))  # (nothing skipped: no None)

    def sent_chunks(self, revs: Sequence[int]) -> Iterator[bytes | None]:
        """``raw_chunks`` for sending: None (nothing read) for a text sent a piece at a time
        (``streams_text``)."""
        return self._windowed_chunks(revs, True)

    def streams_text(self, rev: int) -> bool:
        """Whether ``rev`` is stored whole and is large enough to be sent a piece at a time as it
        is read (``text_pieces``) rather than held."""
        entries = self.index._list
        entry = entries[rev] if entries is not None else self.index.entry(rev)
        return entry[2] >= STREAMED_TEXT and entry[3] == rev

    def text_pieces(self, rev: int) -> Generator[bytes, None, None]:
        """The text of ``rev``, which is stored whole, read and decompressed ``TEXT_STEP`` bytes at
        a time; a damaged chunk, or a text of another size than the index's, raises ``StorageError``
        (after what came before it was given)."""
        size = self.raw_size(rev)
        given = 0
        for piece in self._stored_text_pieces(rev):
            given += len(piece)
            if given > size:
                break
            yield piece
        if given != size:
            raise StorageError(f"revision {rev} of {self.index_path!r} is not the {size} bytes its index says")

    def _stored_text_pieces(self, rev: int) -> Iterator[bytes]:
        start, length = self._chunk_span(rev)
        inline = self.index.inline_data

        def steps() -> Iterator[bytes]:
            for pos in range(0, length, TEXT_STEP):
                size = min(TEXT_STEP, length - pos)
                data = (inline[start + pos:start + pos + size] if inline is not None
                        else self.vfs.read_range(self.data_path, start + pos, size))
                if len(data) != size:
                    raise StorageError(f"revlog {self.data_path!r} is truncated")
                yield data

        raw = steps()
        first = next(raw, b"")
        try:
            if first[:1] == b"\0":
                yield first
                yield from raw
            elif first[:1] == b"u":
                yield first[1:]
                yield from raw
            elif first[:1] == b"x":
                stream = zlib.decompressobj()
                for data in itertools.chain((first,), raw):
                    while data:
                        out = stream.decompress(data, TEXT_STEP)
                        data = stream.unconsumed_tail
                        if out:
                            yield out
                if not stream.eof:
                    raise StorageError(f"corrupt revlog chunk: revision {rev} of {self.index_path!r} is cut short")
            elif first[:4] == _ZSTD_MAGIC:
                reader = cast("IO[bytes]", _StepReader(itertools.chain((first,), raw)))
                yield from zstandard.ZstdDecompressor().read_to_iter(reader, read_size=TEXT_STEP,
                                                                     write_size=TEXT_STEP)
            else:
                raise StorageError(f"unknown revlog compression header {first[:1]!r}")
        except (zlib.error, zstandard.ZstdError) as exc:
            raise StorageError(f"corrupt revlog chunk: {exc}") from exc

    def _windowed_chunks(self, revs: Sequence[int], skip_streamed: bool) -> Iterator[bytes | None]:
        if self.index.inline_data is not None:
            yield from (None if skip_streamed and self.streams_text(r) else self.raw_chunk(r) for r in revs)
            return
        pending: list[tuple[int, int]] = []
        window_start = window_end = 0
        for rev in revs:
            if skip_streamed and self.streams_text(rev):
                if pending:
                    yield from self._read_window(pending, window_start, window_end)
                    pending = []
                yield None
                continue
            start, length = self._chunk_span(rev)
            if pending and (start < window_end or start - window_end > READ_GAP
                            or start + length - window_start > READ_WINDOW):
                yield from self._read_window(pending, window_start, window_end)
                pending = []
            if not pending:
                window_start = start
            pending.append((start, length))
            window_end = start + length
        if pending:
            yield from self._read_window(pending, window_start, window_end)

    def _read_window(self, spans: list[tuple[int, int]], first: int, end: int) -> Iterator[bytes]:
        blob = self.vfs.read_range(self.data_path, first, end - first)
        if len(blob) != end - first:
            raise StorageError(f"revlog {self.data_path!r} is truncated")
        if len(spans) == 1:
            yield blob
            return
        view = memoryview(blob)
        for start, length in spans:
            yield bytes(view[start - first : start - first + length])

    def delta_chain(self, rev: int, stop: int = NULL_REV) -> tuple[list[int], bool]:
        """Revisions whose chunks rebuild ``rev``, oldest first; True if it stopped at ``stop``."""
        chain: list[int] = []
        current = rev
        entry = self.index.entry
        generaldelta = self.index.generaldelta
        while True:
            if current == stop:
                return chain[::-1], True
            chain.append(current)
            base = entry(current)[3]
            if base == current:
                return chain[::-1], False
            # The base precedes the revision, so the walk always ends.
            if not 0 <= base < current:
                raise StorageError(f"corrupt revlog index: revision {current} has delta base {base}")
            current = base if generaldelta else current - 1

    def revision(self, rev: int, verify: bool = False) -> bytes:
        """The full text of ``rev``, from the nearest cached text or snapshot."""
        if rev == NULL_REV:
            return b""
        cached = self._cache
        if cached is not None and cached[0] == rev:
            return cached[1]
        chain, stopped = self.delta_chain(rev, cached[0] if cached else NULL_REV)
        chunks = [decompress(c) for c in self.raw_chunks(chain)]
        if stopped and cached is not None:
            text = mpatch.patches(cached[1], chunks)
        else:
            text = mpatch.patches(chunks[0], chunks[1:])
        if len(text) != self.raw_size(rev):
            raise StorageError(f"revision {rev} of {self.index_path!r} has the wrong size")
        if verify:
            self.verify(rev, text)
        self._cache = (rev, text)
        return text

    def texts(self, start: int, stop: int) -> Iterator[bytes]:
        """Full texts of revisions ``start`` to ``stop - 1`` in order, for a walk over many.

        Chunks are read in windows; a revision stored as a delta against the one
        before it (the usual case in a changelog) is patched onto that text
        instead of being rebuilt from its chain.
        """
        revs = range(start, stop)
        previous, previous_text = NULL_REV, b""
        for rev, raw in zip(revs, self.raw_chunks(revs)):
            base = self.delta_parent(rev)
            if base == NULL_REV:
                text = decompress(raw)
            elif base == previous:
                text = mpatch.patches(previous_text, [decompress(raw)])
            else:
                text = self.revision(rev)
            if len(text) != self.raw_size(rev):
                raise StorageError(f"revision {rev} of {self.index_path!r} has the wrong size")
            previous, previous_text = rev, text
            yield text

    def verify(self, rev: int, text: bytes) -> None:
        if self.flags(rev) & REVIDX_EXTSTORED:  # an LFS pointer: the node hashes the blob, not the pointer
            return
        p1, p2 = self.parent_revs(rev)
        if node_hash(text, self.node(p1), self.node(p2)) != self.node(rev):
            raise StorageError(f"revision {rev} of {self.index_path!r} fails its hash check")

    def stored_delta(self, rev: int, raw: bytes | None = None) -> tuple[int, bytes]:
        """(delta parent rev, mpatch delta) as stored; a full text is a delta against NULL_REV.

        ``raw`` is the stored chunk of ``rev`` when the caller already read it.
        """
        base = self.delta_parent(rev)
        chunk = decompress(self.raw_chunk(rev) if raw is None else raw)
        if base == NULL_REV:
            return NULL_REV, mpatch.full_replacement(0, chunk)
        return base, chunk


def is_filelog(index_path: bytes) -> bool:
    """Whether a store path (as on disk) is a filelog's: ``data/``, or ``dh/`` for a path too long
    to store as it is (store.py)."""
    return index_path.startswith((b"data/", b"dh/"))


class _OpenIndexes:
    """The index snapshots of one open: every one but filelogs' (``data/``), and the most recent
    ``FILELOG_INDEXES_PER_OPEN`` of those."""

    __slots__ = ("_files", "_kept")

    def __init__(self, filelogs: int | None = None) -> None:
        """``filelogs``: how many filelog indexes it keeps (``FILELOG_INDEXES_PER_OPEN`` by default)."""
        self._kept: dict[bytes, Index] = {}
        self._files: LruCache[bytes, Index] = LruCache(FILELOG_INDEXES_PER_OPEN if filelogs is None else filelogs)

    def get(self, index_path: bytes) -> Index | None:
        return self._files.get(index_path) if is_filelog(index_path) else self._kept.get(index_path)

    def __setitem__(self, index_path: bytes, index: Index) -> None:
        if is_filelog(index_path):
            self._files.put(index_path, index)
        else:
            self._kept[index_path] = index


SMALL_INDEX_BYTES = 4096
"""An index file of at most this many bytes (and at most ``SCANNED_ENTRIES`` entries) is kept in the
shared cache as its bytes, not parsed (``IndexCache``)."""

_HEADER = struct.Struct(">I")
_PACKED_STAMP = struct.Struct("=QqQq")
"""A stamp (size, mtime_ns, inode, ctime_ns) as the first bytes of a small index kept as bytes."""


class IndexCache(LruCache[tuple[bytes, bytes], Index | bytes]):
    """Parsed index snapshots shared by every open of the same store.

    A request opens its repository afresh, and a full clone parses every
    revlog index in the store; keeping the snapshots between requests (and
    sharing them between concurrent ones) saves that work and keeps one copy
    in memory instead of one per connection.  An entry is used only while the
    file's stamp (size, mtime, inode, ctime) is unchanged, so a write or a rollback
    is never hidden.  ``budget`` bounds the bytes held.

    A small filelog's index (at most ``SCANNED_ENTRIES`` entries and ``SMALL_INDEX_BYTES``: most
    of a wide store's) is kept as one bytes object, its stamp packed before the file's bytes, and
    parsed again at each use (``_kept_index``).  Kept as an ``Index``, each one-revision filelog of
    a 100,000-file store held 960-1,010 bytes (tracemalloc; 1,050 of RSS in one process, about
    1.4 KB in the service) and was counted as 407: the 64 MiB budget really held 140 MB, and
    counted truthfully a listing or clone of such a store went round the LRU reading every filelog
    again.  As bytes it holds 401 (425 of RSS) and is counted 419; the budget holds 160,000.
    """

    SMALL_ENTRY_OVERHEAD = 300
    """What a small index kept as bytes costs beside its bytes: its key (a tuple and the path; the
    store directory is one object per store, ``intern_scope``), the LRU's order and record of it,
    and the bytes object's header.  Measured over 100,000 one-revision filelogs of one directory
    (115 bytes kept each): 401 bytes held each with tracemalloc, 425 of RSS."""

    ENTRY_COST = kept.INDEX_ENTRY_BYTES
    """What an ``Index`` is counted per entry, beside its node map (``kept.index_bytes``): 356 bytes
    an entry (tracemalloc, a 40,000-entry index), 80 more once its node map is built.  It was
    counted 160 and the node map not at all: the 64 MiB budget held some 170 MB."""

    def __init__(self, budget: int, pool: BudgetPool | None = None) -> None:
        super().__init__(budget, self._index_cost, pool=pool)
        self._scopes: dict[bytes, bytes] = {}
        self._scopes_lock = threading.Lock()

    @classmethod
    def _index_cost(cls, held: Index | bytes) -> int:
        if isinstance(held, bytes):
            return len(held) + cls.SMALL_ENTRY_OVERHEAD
        return kept.index_bytes(held)

    def intern_scope(self, scope: bytes) -> bytes:
        """One bytes object per store directory for every key of it: each open of a repository
        names its store anew, and a key kept by each of a crawler's requests held its own copy.
        Bounded: past ``MAX_SCOPES`` store directories the table starts again."""
        with self._scopes_lock:
            found = self._scopes.get(scope)
            if found is None:
                if len(self._scopes) >= MAX_SCOPES:
                    self._scopes.clear()
                found = self._scopes[scope] = scope
            return found

    def keep(self, key: tuple[bytes, bytes], index: Index) -> None:
        """Keep ``index`` (whose ``stamp`` is not None), as its file's bytes if it is a small filelog's.

        Only filelogs: a changelog's snapshot is the same object for every open while its file is
        unchanged, and the views computed from it are kept as long as it is (``HgRepo.views``)."""
        small = _small_form(index) if is_filelog(key[1]) else None
        self.put(key, small or index)

    def snapshot(self, key: tuple[bytes, bytes], stamp: Stamp) -> Index | None:
        """The snapshot kept for ``key``: one kept as bytes only while ``stamp`` is still its
        stamp; an ``Index`` whatever its stamp (an older one may be extended, ``_grown``)."""
        found = self.get(key)
        if not isinstance(found, bytes):
            if found is not None and len(found) > LAZY_ENTRIES:  # (lazy, or parsed whole since it was weighed)
                self._weigh_lazy(key, found)
            return found
        if _PACKED_STAMP.unpack_from(found) != stamp:
            return None
        return _kept_index(found[_PACKED_STAMP.size:], stamp)

    def _weigh_lazy(self, key: tuple[bytes, bytes], index: Index) -> None:
        """Weigh a lazy index again if it has worked out more since it was weighed (its node map,
        its entries parsed whole)."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] is not index or found[1] == self._index_cost(index):
                return
        self.reweigh(key)

    def get_valid(self, key: tuple[bytes, bytes], stamp: Stamp) -> Index | None:
        found = self.snapshot(key, stamp)
        return found if found is not None and found.stamp == stamp else None


MAX_SCOPES = 4096
"""Store directories ``IndexCache.intern_scope`` remembers."""


def _small_form(index: Index) -> bytes | None:
    """The bytes a small index is kept as (its stamp, then its file), or None to keep it parsed."""
    if index.stamp is None or not len(index) or len(index) > SCANNED_ENTRIES:
        return None
    data = index.inline_data if index.inline else _packed_entries(index)
    if data is None or len(data) > SMALL_INDEX_BYTES:
        return None
    try:
        return _PACKED_STAMP.pack(*index.stamp) + data
    except struct.error:  # a stamp field out of range (an inode past 2**64): keep it parsed
        return None


def _kept_index(data: bytes, stamp: Stamp) -> Index:
    """Parse a small index's ``data`` kept by ``_small_form``, which ``parse_index`` found whole and
    valid then: not checked again, and a one-revision inline filelog (most of a wide store's) read
    with one unpack (0.75 µs against ``parse_index``'s 1.3)."""
    header = _HEADER.unpack_from(data)[0]
    if not header & FLAG_INLINE:
        entries = list(INDEX_ENTRY.iter_unpack(data))
    elif (first := INDEX_ENTRY.unpack_from(data))[1] + ENTRY_SIZE == len(data):
        entries = [first]
    else:
        entries = _parse_inline(data)
    entry = entries[0]
    entries[0] = (entry[0] & 0xFFFF,) + entry[1:]
    return Index(entries, header, stamp, data if header & FLAG_INLINE else None)


def _packed_entries(index: Index) -> bytes:
    """A split index's entries as its file holds them (the header over the first entry's offset):
    parsed again, they are ``index.entries``."""
    packed = bytearray()
    for entry in index.entries:
        packed += INDEX_ENTRY.pack(*entry)
    packed[:4] = struct.pack(">I", index.header)
    return bytes(packed)


SHARED_INDEXES = IndexCache(sys.maxsize, kept.KEPT)
"""The process-wide cache of on-disk index snapshots, keyed by store directory and path, within
the budget of everything the engine keeps parsed (``kept.KEPT``)."""


FILELOG_INDEXES_PER_OPEN = 32
"""Filelog indexes one open of a repository keeps for itself (the most recently used): a full clone
opens every filelog once, and keeping them all held a store's inline revlogs whole (82 MiB for
6,000 files of a 40,000-changeset history) beside the shared cache's budget."""


APPEND_RECORDS = 4096
"""Snapshots of split (not inline) indexes whose bytes ``_APPENDS`` remembers (a digest each)."""
_APPENDS: LruCache[tuple[bytes, Stamp], tuple[bytes | None, int, hashlib._Hash | None]] = LruCache(APPEND_RECORDS)
"""(the ``.i`` file's path, its stamp) -> (SHA-256 of the bytes its entries were parsed from, its
lineage, the hash's state after those bytes): an index grown from a snapshot (``RevlogCache._grown``)
is checked against the digest of the bytes that snapshot was parsed from, and shares its lineage;
one this process appended to itself (``RevlogCache.appended``) continues the hash with its own bytes.
No hash for a lazy index (``Index.packed``): it holds the bytes themselves, which a grown file's are
compared with (hashing 12.8 MB of a 200,000-changeset changelog cost 6 ms at every first open); it
hashes them if it lets them go (``Index.entries``)."""
_APPENDS_LOCK = threading.Lock()
_LINEAGES = itertools.count(1)


def _append_key(vfs: Vfs, index_path: bytes, stamp: Stamp | None) -> tuple[bytes, Stamp] | None:
    join = getattr(vfs, "join", None)  # (a store on disk: one in memory has no outside writer)
    if stamp is None or not stamp[2] or join is None:
        return None
    return (join(index_path), stamp)


def index_lineage(vfs: Vfs, index_path: bytes, index: Index) -> int | None:
    """The lineage of a split index's snapshot on disk: two snapshots of the same file with one
    lineage hold the same entries where both have them (the later was only appended to); None when
    that is not known (inline, in memory, or no longer remembered), for a caller to start over."""
    key = _append_key(vfs, index_path, index.stamp)
    if key is None:
        return None
    with _APPENDS_LOCK:
        found = _APPENDS.get(key)
    return None if found is None else found[1]


def forget_appends(match: Callable[[object], bool]) -> int:
    """Forget the digests ``_APPENDS`` remembers of the index files whose paths ``match`` (a
    repository found gone)."""
    with _APPENDS_LOCK:
        return _APPENDS.drop_where(match)


def _remember_appends(key: tuple[bytes, Stamp] | None, digest: hashlib._Hash | None, lineage: int) -> None:
    """Remember ``digest``, the hash of a snapshot's bytes, never updated after (None: the snapshot
    is lazy and holds its bytes, ``_APPENDS``)."""
    if key is not None:
        with _APPENDS_LOCK:
            _APPENDS.put(key, (None if digest is None else digest.digest(), lineage, digest))


def _digest_of(index: Index, known: tuple[bytes | None, int, hashlib._Hash | None]) -> hashlib._Hash | None:
    """The hash of the bytes ``index`` was parsed from: remembered, or taken when it let them go."""
    return known[2] if known[2] is not None else index._digest


class RevlogCache:
    """Index snapshots per revlog path, reparsed only when the ``.i`` stamp changes.

    With a ``scope`` (the store directory of an on-disk repository) snapshots
    are also looked up in and added to ``shared``, across opens.  The changelog's and manifests'
    are kept for the whole open (however large), filelogs' only the last
    ``FILELOG_INDEXES_PER_OPEN`` (the shared cache may hold more).
    """

    def __init__(self, vfs: Vfs, default_header: int, scope: bytes | None = None,
                 shared: IndexCache = SHARED_INDEXES, headers: Mapping[bytes, int] | None = None) -> None:
        """``headers``: the header of a revlog created at one of these paths, where it is not
        ``default_header`` (the changelog's)."""
        self.vfs = vfs
        self.default_header = default_header
        self.headers = dict(headers or {})
        self.scope = None if scope is None else shared.intern_scope(scope)
        self.shared = shared
        self._indexes = _OpenIndexes()
        self.on_grow: Callable[[], None] | None = None
        """Called when this open keeps another snapshot but a filelog's, or its repository more
        derived data (``HgRepo``): a kept repository is weighed again (``backends.hg.READ_REUSE``)."""

    def share_filelogs_only(self) -> None:
        """Keep no filelog index for this open itself, only in the shared cache (within its budget):
        for a repository given to request after request (``backends.hg.open_for_reading``), whose
        own ones, kept for good, would be beside that budget.  Before it is shared."""
        self._indexes = _OpenIndexes(0)

    def open(self, index_path: bytes, logical: bytes | None = None) -> Revlog:
        return Revlog(self.vfs, index_path, self.index(index_path), logical)

    def kept_indexes(self) -> list[Index]:
        """The snapshots this open keeps for itself but its filelogs' (what a kept repository holds)."""
        return list(self._indexes._kept.values())

    def adopt(self, index_path: bytes, index: Index) -> None:
        """Take ``index``, a snapshot another open parsed, as this open's while its file's stamp is
        still the one it was parsed at (as a snapshot of the shared cache is taken); else nothing.
        For an index the shared cache does not keep (too large for its budget) that something else
        holds anyway: the changelog's, which ``HgRepo``'s views kept between requests hold."""
        if self._indexes.get(index_path) is None and index.stamp is not None \
                and self.vfs.stamp(index_path) == index.stamp:
            self._indexes[index_path] = index
            self._grew(index_path)

    def index(self, index_path: bytes) -> Index:
        stamp = self.vfs.stamp(index_path)
        cached = self._indexes.get(index_path)
        if cached is not None and cached.stamp == stamp:
            return cached
        shared = None
        if self.scope is not None and stamp is not None:
            shared = self.shared.snapshot((self.scope, index_path), stamp)
            if shared is not None and shared.stamp == stamp:
                self._indexes[index_path] = shared
                self._grew(index_path)
                return shared
        index = None
        if stamp is not None:
            for older in (shared, cached):
                if older is not None and (index := self._grown(index_path, older, stamp)) is not None:
                    break
        if index is None:
            data = self.vfs.read(index_path) if stamp is not None else b""
            index = parse_index(data, stamp, self.headers.get(index_path, self.default_header))
            if not index.inline and len(index) and len(data) == (stamp or (0,))[0]:
                _remember_appends(_append_key(self.vfs, index_path, stamp),
                                  None if index.packed_parts is not None else
                                  hashlib.sha256(memoryview(data)[:len(index) * ENTRY_SIZE]),
                                  next(_LINEAGES))
        if self.vfs.stamp(index_path) == stamp:
            self._indexes[index_path] = index
            self._grew(index_path)
            if self.scope is not None and stamp is not None:
                self.shared.keep((self.scope, index_path), index)
        return index


    def _grew(self, index_path: bytes) -> None:
        if self.on_grow is not None and not is_filelog(index_path):
            self.on_grow()

    def appended(self, index_path: bytes, before: Index, added: bytes, after: Index) -> None:
        """After this process appended ``added`` (packed entries) to a split index whose snapshot was
        ``before``, holding the repository's lock: take ``after`` (its entries and node map made by
        the writer) as the file's snapshot, as ``index`` takes one it parsed, with the digest of its
        bytes continued from ``before``'s by ``added`` alone.  The next open read the whole file and
        hashed it to check the old entries (``_grown``): 12.8 MB after each push into a 200,000-changeset
        repository.  Nothing when the file is not ``before``'s grown by those bytes, same inode, or
        ``before``'s digest is no longer remembered (the next open then reads it as before)."""
        old, stamp = before.stamp, self.vfs.stamp(index_path)
        if (not added or old is None or stamp is None or before.inline or not len(before) or not old[2]
                or stamp[2] != old[2] or old[0] != len(before) * ENTRY_SIZE
                or stamp[0] != old[0] + len(added) or len(after) * ENTRY_SIZE != stamp[0]):
            return
        with _APPENDS_LOCK:
            known = _APPENDS.get(key) if (key := _append_key(self.vfs, index_path, old)) is not None else None
        if known is None:
            return
        if after.packed_parts is None:  # (a lazy one holds the bytes it is checked by: no hash)
            state = _digest_of(before, known)
            if state is None:
                return
            continued = state.copy()
            continued.update(added)
            digest: hashlib._Hash | None = continued
        else:
            digest = None
        _remember_appends(_append_key(self.vfs, index_path, stamp), digest, known[1])
        index = after.restamped(before.header, stamp)
        self._indexes[index_path] = index
        self._grew(index_path)
        if self.scope is not None:
            self.shared.keep((self.scope, index_path), index)

    def _grown(self, index_path: bytes, older: Index, stamp: Stamp) -> Index | None:
        """``older`` with the entries appended to its file since, or None to parse the file whole.

        A push appends to the changelog's and manifest's indexes: reading and
        parsing only the new entries (and extending the old node map) keeps what
        every later request pays for the new snapshot proportional to the push.
        Only for the same file (inode), grown, not inline, whose old bytes are
        still there as they were: the digest of those ``_APPENDS`` remembers is
        checked (its last entry alone was not enough: ``hg strip`` of two heads,
        a commit, then ``hg unbundle`` of the second's backup put that entry back
        where it was, and a stripped changeset went on being served as the first
        one's); reading and hashing them (SHA-256) costs a sixth of parsing them,
        and a lazy index compares them with the bytes it holds (no hash at all).
        Its stamp (size, mtime, inode) and its last entries cannot stand for that
        digest: a strip truncates in place (same inode) and the writes after it
        may leave the size, and those entries, as an append would.
        """
        old_stamp = older.stamp
        if (old_stamp is None or older.inline or not len(older) or not stamp[2] or old_stamp[2] != stamp[2]
                or stamp[0] <= old_stamp[0] or old_stamp[0] % ENTRY_SIZE
                or old_stamp[0] != len(older) * ENTRY_SIZE):
            return None
        with _APPENDS_LOCK:
            known = _APPENDS.get(key) if (key := _append_key(self.vfs, index_path, old_stamp)) is not None else None
        if known is None:
            return None
        data = self.vfs.read_range(index_path, 0, stamp[0])
        usable = len(data) - len(data) % ENTRY_SIZE  # a trailing partial entry: an append in progress
        start = old_stamp[0]
        if usable <= start:
            return None
        parts = older.packed_parts
        if parts is not None:  # (lazy: its own bytes, compared where they were hashed)
            held, tail = parts
            if len(held) + len(tail) != start or not data.startswith(held) or not data.startswith(tail, len(held)):
                return None
            if usable == stamp[0]:
                _remember_appends(_append_key(self.vfs, index_path, stamp), None, known[1])
            # (the old bytes were just checked to be these: no copy to concatenate)
            return older.grown(bytes(data[:usable]) if usable != len(data) else data, stamp)
        state = _digest_of(older, known)
        if state is None:
            return None
        digest = hashlib.sha256(memoryview(data)[:start])
        if digest.digest() != state.digest():
            return None
        if usable == stamp[0]:
            digest.update(memoryview(data)[start:usable])
            _remember_appends(_append_key(self.vfs, index_path, stamp), digest, known[1])
        added = list(INDEX_ENTRY.iter_unpack(memoryview(data)[start:usable]))
        entries = older.entries + added
        nodemap: dict[bytes, int] = {}
        if len(older._nodemap) == len(older.entries):
            nodemap = dict(older._nodemap)
            nodemap.update((e[7][:20], rev) for rev, e in enumerate(added, len(older.entries)))
        return Index(entries, older.header, stamp, None, nodemap).carried(older)


class Journal(Protocol):
    """What a writer needs from the transaction: undo information before each change."""

    encode: Callable[[bytes], bytes]
    """A store path's name on disk (``data/Foo.i`` -> ``data/_foo.i``)."""

    def record_append(self, path: bytes, size: int) -> None: ...

    def backup(self, path: bytes, location: bytes = ...) -> None: ...


SPILL_BYTES = 2 << 20
"""Chunks a delayed writer (the changelog's, written at commit) keeps in memory before it moves
them to its spool file (a changelog's chunks are small: each one's object costs 50 bytes more)."""
WRITE_BATCH = 8 << 20
"""Bytes joined for one append when buffered chunks are written out."""


class PendingChunks:
    """The stored chunks of a writer's buffered revisions, in order.

    They stay in memory, unless a spool directory is given: then, past ``SPILL_BYTES``
    held, they move to an unnamed temporary file there (gone with the process, never
    seen by a reader of the store) and are read back in order when written out. A
    migration's push into an empty repository buffers its whole changelog until the
    commit (hg delays it the same way): 7.5 MB of chunks for 40,000 changesets, 12 MiB as objects.
    """

    def __init__(self, spool_dir: bytes | None = None) -> None:
        self._dir = spool_dir
        self._file: BinaryIO | None = None
        self._lengths = array("q")
        self._spilled = 0
        """Leading chunks that are in the file, not in ``_memory``."""
        self._memory: list[bytes] = []
        self._memory_bytes = 0
        self.total = 0
        """Bytes of all the chunks."""

    def __len__(self) -> int:
        return len(self._lengths)

    def append(self, chunk: bytes) -> None:
        self._lengths.append(len(chunk))
        self._memory.append(chunk)
        self._memory_bytes += len(chunk)
        self.total += len(chunk)
        if self._dir is not None and self._memory_bytes > SPILL_BYTES:
            self._spill()

    def _spill(self) -> None:
        assert self._dir is not None
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=os.fsdecode(self._dir), prefix="pending-chunks-")  # noqa: SIM115 (closed by close)
        self._file.seek(0, os.SEEK_END)
        self._file.write(b"".join(self._memory))
        self._spilled += len(self._memory)
        self._memory = []
        self._memory_bytes = 0

    def chunks(self, start: int = 0) -> Iterator[bytes]:
        """The chunks from the ``start``-th on, in order."""
        if start < self._spilled:
            assert self._file is not None
            self._file.seek(sum(self._lengths[:start]))
            for length in self._lengths[start:self._spilled]:
                chunk = self._file.read(length)
                if len(chunk) != length:
                    raise StorageError("a writer's spooled revisions were cut short")
                yield chunk
            start = self._spilled
        yield from self._memory[start - self._spilled:]

    def close(self) -> None:
        """Forget every chunk (and the spool file)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._lengths = array("q")
        self._spilled = 0
        self._memory = []
        self._memory_bytes = 0
        self.total = 0


def _batched(pieces: Iterator[bytes], limit: int = WRITE_BATCH) -> Iterator[bytes]:
    """``pieces`` joined into blocks of about ``limit`` bytes; a piece of that size or more goes
    as it is (joined, a large revision's chunk would be copied whole)."""
    block: list[bytes] = []
    size = 0
    for piece in pieces:
        if len(piece) >= limit:
            if block:
                yield b"".join(block)
                block = []
                size = 0
            yield piece
            continue
        block.append(piece)
        size += len(piece)
        if size >= limit:
            yield b"".join(block)
            block = []
            size = 0
    if block:
        yield b"".join(block)


def split_index_path(logical_index: bytes) -> bytes:
    """Where hg keeps the index of a revlog split inside a transaction until the transaction
    closes (revlog.py ``_split_index_file``): ``data/a/b.i`` -> ``data-s/a/b.i``, ``00manifest.i``
    -> ``00manifest.i.s``; hooks run by hg with ``HG_PENDING`` read a filelog from there."""
    head, sep, rest = logical_index.partition(b"/")
    return head + b"-s/" + rest if sep else logical_index + b".s"


TEXT_CACHE_BYTES = 16 << 20
"""The texts a writer keeps for the next deltas' bases.  A push of the bench corpus's 5,000
manifests (100 KB each) reads 4 bases from disk with this much; 64 MiB saved none of those reads
and held 64 MiB per push."""


class _WriterEntries:
    """A writer's entries: those of the snapshot it started from (``base``), read from it as
    asked, then the ones it added (``added``, each node padded to 32 bytes)."""

    __slots__ = ("_base_count", "added", "base")

    def __init__(self, base: Index) -> None:
        self.base = base
        self._base_count = len(base)
        self.added: list[Entry] = []

    def __len__(self) -> int:
        return self._base_count + len(self.added)

    @overload
    def __getitem__(self, rev: int) -> Entry: ...

    @overload
    def __getitem__(self, rev: slice) -> list[Entry]: ...

    def __getitem__(self, rev: int | slice) -> Entry | list[Entry]:
        if isinstance(rev, slice):
            start, stop, step = rev.indices(len(self))
            if step == 1 and start >= self._base_count:
                return self.added[start - self._base_count:stop - self._base_count]
            return [self[r] for r in range(start, stop, step)]
        if rev < 0:
            rev += len(self)
            if rev < 0:
                raise IndexError("revlog index out of range")
        if rev >= self._base_count:
            return self.added[rev - self._base_count]
        return self.base.entry(rev)

    def __iter__(self) -> Iterator[Entry]:
        yield from self.base.entries
        yield from self.added

    def append(self, entry: Entry) -> None:
        self.added.append(entry)

    def snapshot(self, header: int) -> Index:
        """An index of every entry (a lazy one over its base's bytes and the added ones packed)."""
        base = self.base
        parts = base.packed_parts
        if parts is not None and self._base_count:
            added = b"".join(INDEX_ENTRY.pack(*entry) for entry in self.added)
            return base.appended_by(added, None, parts)
        return Index(base.entries + self.added, header, None, None)


class WriterNodeLookup(Mapping[bytes, int]):
    """A writer's node -> rev (``RevlogWriter.nodemap``): its added revisions, then its snapshot's
    (``Index.find``); nothing is copied.  Iterating or counting builds the snapshot's map once."""

    __slots__ = ("_added", "_base")

    def __init__(self, added: dict[bytes, int], base: Index) -> None:
        self._added = added
        self._base = base

    def __getitem__(self, node: bytes) -> int:
        found = self.get(node)
        if found is None:
            raise KeyError(node)
        return found

    def get(self, node: bytes, default: int | None = None) -> int | None:  # type: ignore[override]
        found = self._added.get(node)
        if found is None:
            found = self._base.find(node)
        return default if found is None else found

    def __contains__(self, node: object) -> bool:
        return isinstance(node, bytes) and self.get(node) is not None

    def __iter__(self) -> Iterator[bytes]:
        added = self._added
        yield from (node for node in self._base.nodemap() if node not in added)
        yield from added

    def __len__(self) -> int:
        added = self._added
        return len(self._base.nodemap()) + sum(1 for node in added if self._base.find(node) is None)


class RevlogWriter:
    """Append revisions to one revlog inside a transaction.

    New entries are buffered and written by :meth:`flush`; the changelog is
    flushed last, so other readers never see a changeset before its manifests
    and files (Mercurial delays the changelog the same way).
    """

    def __init__(self, revlog: Revlog, journal: Journal, compressor: Compressor,
                 spool_dir: bytes | None = None, changelog: bool = False, sparse: bool = True) -> None:
        """``spool_dir``: where the chunks of a long buffered group wait (:class:`PendingChunks`),
        for a writer flushed only at the commit.  ``changelog``: write as hg writes the changelog
        (changelog.py: ``may_inline=False``, ``_storedeltachains = False``): every revision a full
        snapshot, and an inline changelog split at its first write whatever its size.  ``sparse``:
        the store has the ``sparserevlog`` requirement (else a chain's span is bounded too)."""
        self.vfs = revlog.vfs
        self.reader = revlog
        self.index_path = revlog.index_path
        self.data_path = revlog.data_path
        self.logical_index = revlog.logical_index
        self.logical_data = revlog.logical_data
        self.journal = journal
        self.compressor = compressor
        self.header = revlog.index.header
        self.entries = _WriterEntries(revlog.index)
        """Its snapshot's entries, read from it as asked (a push into 200,000 changesets copied them
        all, and their node map), then the ones it added."""
        self._added_nodes: dict[bytes, int] = {}
        self._pending_index = bytearray()
        """The packed index entries of the buffered revisions."""
        self._chunks = PendingChunks(spool_dir)
        """Their stored chunks."""
        self.texts: dict[int, bytes] = {}
        self.texts_size = 0
        self._chain_info: dict[int, tuple[int, int]] = {}
        """(chain length, chain bytes) of stored revisions, measured when a delta is based on one."""
        self.sparse = sparse
        self._chain_bases: dict[int, int] = {}
        """The first revision of the chain of revisions a delta was based on, or added (a revlog that
        is not sparse: ``_span_from``)."""
        self._added_from = len(self.entries)
        self._added_lengths = array("i")
        self._added_sizes = array("q")
        """The same of each added revision, by ``rev - _added_from`` (arrays: a dict of tuples cost a
        migration's push 90 bytes a changeset and a manifest)."""
        self.changelog = changelog
        self.split_index: bytes | None = None
        """The logical path of the split index (``split_index_path``) that replaces the inline one
        at the commit, once an inline revlog other sessions may be reading was split: until then
        they read the inline revlog as it was, and an abort leaves it as it was."""
        self.index_file = self.index_path
        """Where the index entries are written: the split index's file while the split waits."""
        self._inline_too = not self.logical_index.startswith(b"data/")
        """A manifest split while it waits for the commit still gets every revision in its inline
        ``.i`` too: hg's hooks read a pending manifest from there (hg looks for a split index of a
        filelog only)."""
        self._journaled = False
        self._index_size_before = 0
        """The size of ``.i`` when this writer first wrote (0: a new revlog, no reader holds it)."""
        self._split_data = False
        """``.d`` holds the written revisions of an inline revlog being split (``_write_split_data``)."""
        self.released = False
        """``release`` let go of the revisions: nothing more may be added."""
        self._data_written = 0
        """Leading buffered revisions whose chunks ``write_pending`` already appended to ``.d``."""
        self._before = revlog.index
        """The snapshot it started from."""
        self._appended: bytearray | None = bytearray()
        """The packed entries its flushes appended to the index file, while they only appended to a
        split one (None once one did otherwise: ``appended_snapshot``)."""

    @property
    def pending(self) -> int:
        """How many revisions are buffered, not yet written."""
        return len(self._chunks)

    @property
    def pending_bytes(self) -> int:
        return self._chunks.total + len(self._pending_index)

    @property
    def inline(self) -> bool:
        return bool(self.header & FLAG_INLINE)

    @property
    def generaldelta(self) -> bool:
        return bool(self.header & FLAG_GENERALDELTA)

    def __len__(self) -> int:
        return len(self.entries)

    def rev(self, node: bytes) -> int:
        if node == NULL_NODE:
            return NULL_REV
        found = self._added_nodes.get(node)
        if found is None:
            found = self.entries.base.find(node)
            if found is None:
                raise KeyError(node)
        return found

    def node(self, rev: int) -> Node:
        return NULL_NODE if rev == NULL_REV else Node(self.entries[rev][7][:20])

    def has_node(self, node: bytes) -> bool:
        return node == NULL_NODE or node in self._added_nodes or self.entries.base.find(node) is not None

    @property
    def nodemap(self) -> Mapping[bytes, int]:
        """node -> rev of every revision, the added ones too: a view that asks the added ones, then
        the snapshot's ``find`` (a merged dict made for each call cost a push into 200,000
        changesets a copy of every node each time an obsolescence check asked)."""
        return WriterNodeLookup(self._added_nodes, self.entries.base)

    def _data_end(self) -> int:
        if not self.entries:
            return 0
        last = self.entries[-1]
        return (last[0] >> 16) + last[1]

    def text(self, rev: int) -> bytes:
        """Full text of any revision, including ones added but not yet flushed."""
        if rev == NULL_REV:
            return b""
        text = self.texts.pop(rev, None)
        if text is not None:
            self.texts[rev] = text  # the most recently used now: a base many deltas share stays
            return text
        if rev >= len(self.reader):
            self.flush()
            self.reader = self._written()
        text = self.reader.revision(rev)
        self._remember(rev, text)
        return text

    def _written(self) -> Revlog:
        """A reader of the revlog as flushed: a split one's index is the writer's entries (parsing
        the file again held a second copy of a migration's 40,000-entry manifest index)."""
        if self.inline:
            return Revlog(self.vfs, self.index_path, self._snapshot(), self.logical_index)
        return Revlog(self.vfs, self.index_path, self.entries.snapshot(self.header), self.logical_index)

    def _snapshot(self) -> Index:
        data = self.vfs.read(self.index_path) if self.vfs.exists(self.index_path) else b""
        return parse_index(data, None, self.header)

    def _remember(self, rev: int, text: bytes) -> None:
        """Keep recent texts: changegroup deltas almost always use a recent base (or one many
        share, which ``text`` keeps as the most recently used)."""
        self.texts[rev] = text
        self.texts_size += len(text)
        while self.texts_size > TEXT_CACHE_BYTES and len(self.texts) > 1:
            oldest = next(iter(self.texts))
            self.texts_size -= len(self.texts.pop(oldest))

    def release(self) -> None:
        """Write what is buffered and let go of what the writer holds (its entries, node map, texts,
        chain lengths): the revlog's group is complete.  The writer then only flushes (nothing) and
        names its files; read the revlog from the store to see its revisions."""
        self.flush()
        self.forget_texts()
        self.entries = _WriterEntries(Index([], self.header, None, None))
        self._added_nodes = {}
        self.released = True

    def discard(self) -> None:
        """Drop the buffered revisions unwritten (the transaction is aborting)."""
        self._pending_index = bytearray()
        self._chunks.close()
        self._data_written = 0
        self._split_data = False
        self.split_index = None
        self.index_file = self.index_path

    def forget_texts(self) -> None:
        """Drop the kept texts and chain lengths: the revlog's group is complete, no later delta of
        it needs them.

        (``text`` still reads any revision, from disk, and a chain is measured again.)  Without
        this, a push of many large files held every file's texts until its commit, and a migration's
        push a chain length for each of its file revisions (10 MiB for 190,000).
        """
        self.texts.clear()
        self.texts_size = 0
        self._chain_info.clear()
        self._chain_bases.clear()
        self._added_lengths = array("i")
        self._added_sizes = array("q")

    def _chain(self, rev: int) -> tuple[int, int]:
        """(chain length, compressed bytes in chain) of ``rev``."""
        added = rev - self._added_from
        if 0 <= added < len(self._added_lengths):
            return self._added_lengths[added], self._added_sizes[added]
        info = self._chain_info.get(rev)
        if info is None:
            length = size = 0
            current = rev
            while True:
                entry = self.entries[current]
                length += 1
                size += entry[1]
                if entry[3] == current:
                    break
                current = entry[3] if self.generaldelta else current - 1
            info = (length, size)
            self._chain_info[rev] = info
        return info

    def _span_from(self, base: int) -> int:
        """Where the data of the chain ``base`` ends (its first revision's chunk's offset): a delta
        on it spans from there to the end of the new chunk.  Generaldelta only."""
        first = self._chain_bases.get(base)
        if first is None:
            first = base
            while (entry_base := self.entries[first][3]) != first:
                first = entry_base
            self._chain_bases[base] = first
        return self.entries[first][0] >> 16

    def add(self, node: Node, p1: Node, p2: Node, linkrev: int, text: bytes,
            delta: tuple[int, bytes] | None = None, flags: int = 0) -> int:
        """Append one revision whose hash the caller has verified; return its rev.

        ``delta`` is ``(base rev, delta)`` as received, known to give ``text``:
        stored as it is when its base is the base this revlog would choose.
        ``flags``: the revision's flags (``REVIDX_EXTSTORED`` for an LFS pointer).
        """
        assert not self.released, "a released writer adds nothing"
        rev = len(self.entries)
        p1rev, p2rev = self.rev(p1), self.rev(p2)
        base, chunk = self._choose_storage(rev, p1rev, p2rev, text, delta)
        offset = self._data_end()
        entry: Entry = ((offset << 16) | flags, len(chunk), len(text), base, linkrev, p1rev, p2rev,
                        node + b"\0" * 12)
        self.entries.append(entry)
        self._added_nodes[node] = rev
        packed = INDEX_ENTRY.pack(*entry)
        if rev == 0:
            packed = struct.pack(">I", self.header) + packed[4:]
        self._pending_index += packed
        self._chunks.append(chunk)
        self._remember(rev, text)
        return rev

    def _choose_storage(self, rev: int, p1rev: int, p2rev: int, text: bytes,
                        delta: tuple[int, bytes] | None = None) -> tuple[int, bytes]:
        """The smallest acceptable delta against a parent (the previous rev without generaldelta) or,
        for a file, against the base of the delta the client sent (``delta``: the one its hg
        stored, often against an older snapshot, where a diff of ours, one hunk from the first
        changed line to the last, is larger); else the full text, which is a snapshot (base == rev)
        sparse-revlog readers and writers both accept.  (A manifest's delta is only ever against a
        parent: its readers take the files a changeset changed from such a delta.)

        A delta is acceptable, as Mercurial's writer judges (revlogutils/deltas.py
        ``is_good_delta_info``), when it is no larger than the text and the compressed bytes of
        its whole chain stay within twice the text: what a read of the revision decompresses is
        bounded so.  Its chain is also at most ``chain_limit`` long (1,000 links, as Mercurial's,
        fewer for texts over 256 KiB): each link a read patches copies the text once.  (Taking
        only deltas under half the text stored small edits of small files as whole texts: 94
        compressed bytes where Mercurial keeps an 83-byte delta.)
        The changelog stores none: ``hg debugformat``'s ``plain-cl-delta`` checks that every
        revision is its own chain base (upgrade_utils/actions.py ``removecldeltachain``).
        """
        best: tuple[int, bytes, int, int] | None = None
        if text and not self.changelog:
            if self.generaldelta:
                candidates = [p1rev] if p2rev in (NULL_REV, p1rev) else [p1rev, p2rev]
            else:
                candidates = [rev - 1]
            if (delta is not None and self.generaldelta and delta[0] not in candidates
                    and self.logical_index.startswith(b"data/")):
                candidates.append(delta[0])  # a file's delta as the client sent it: hg's choice, no diff made
            limit, longest = 2 * len(text) + CHAIN_SLACK, chain_limit(len(text))
            spanned = self.generaldelta and not self.sparse
            end, span = self._data_end(), SPAN_TO_TEXT * len(text)
            for base in candidates:
                if base == NULL_REV:
                    continue
                length, size = self._chain(base)
                if length >= longest or size >= limit:
                    continue
                start = self._span_from(base) if spanned else end
                if end - start > span:
                    continue
                raw = delta[1] if delta is not None and delta[0] == base else mpatch.diff(self.text(base), text)
                chunk = self.compressor.compress(raw)
                if len(chunk) <= len(text) and size + len(chunk) <= limit and end + len(chunk) - start <= span and (
                        best is None or len(chunk) < len(best[1])):
                    best = (base, chunk, length, size)
        if best is not None:
            base, chunk, length, size = best
            self._added_lengths.append(length + 1)
            self._added_sizes.append(size + len(chunk))
            if self.generaldelta and not self.sparse:
                self._chain_bases[rev] = self._chain_bases[base]
            return (base if self.generaldelta else self.entries[base][3]), chunk
        chunk = self.compressor.compress(text)
        self._added_lengths.append(1)
        self._added_sizes.append(len(chunk))
        return rev, chunk

    def maybe_flush(self) -> None:
        if self.pending_bytes > (8 << 20):
            self.flush()

    def flush(self) -> None:
        """Write buffered entries, journaling sizes first; split an inline revlog that grew too big."""
        if not self.pending:
            return
        self._journal_sizes()
        if self._splits():
            self._split()
            self._appended = None
        elif self.inline:
            self._append_inline()
            self._appended = None
        else:
            self._append_data()
            if self.split_index is not None and self._inline_too:
                self._append_inline()
            self.vfs.append(self.index_file, bytes(self._pending_index))
            if self._appended is not None and self.split_index is None:
                self._appended += self._pending_index
            else:
                self._appended = None
        self._pending_index = bytearray()
        self._chunks.close()
        self._data_written = 0

    def appended_snapshot(self) -> tuple[Index, bytes, Index] | None:
        """Once its revisions are committed: (the snapshot it started from, the packed entries its
        flushes appended to the index file, the snapshot of the file they make, which takes this
        writer's entries and node map: it adds nothing after); None unless it only appended to a
        split index (``RevlogCache.appended``).  Costs the appended entries, not the revlog's."""
        added = self._appended
        if not added or self.pending or self.released or self.split_index is not None:
            return None
        start = len(self.entries) - len(added) // ENTRY_SIZE
        if start != len(self._before) or self.entries.base is not self._before:
            return None
        self.released = True
        before, packed = self._before, bytes(added)
        parts = before.packed_parts
        if parts is not None:  # lazy: the file's bytes, what was worked out of them extended
            return before, packed, before.appended_by(packed, None, parts)
        nodemap = None
        if len(before._nodemap) == len(before):
            nodemap = {**before._nodemap, **self._added_nodes}
        entries = before.entries + list(INDEX_ENTRY.iter_unpack(added))  # as parsed: 20-byte nodes, like the old ones
        return before, packed, Index(entries, self.header, None, None, nodemap).carried(before)

    def _splits(self) -> bool:
        """Whether writing the buffered revisions makes an inline revlog a split one: past
        ``MAX_INLINE`` bytes of data (revlog.py ``_enforceinlinesize``), or at once for the changelog."""
        return self.inline and (self.changelog or self._data_end() >= MAX_INLINE)

    def _append_data(self) -> None:
        """Append the buffered chunks not yet in ``.d`` to it."""
        for block in _batched(self._chunks.chunks(self._data_written)):
            self.vfs.append(self.data_path, block)
        self._data_written = self.pending

    def _journal_sizes(self) -> None:
        if not self._journaled:
            self._index_size_before = self.vfs.size(self.index_path)
            self.journal.record_append(self.logical_index, self._index_size_before)
            if not self.inline:
                self.journal.record_append(self.logical_data, self.vfs.size(self.data_path))
            self._journaled = True

    def write_pending(self, name: bytes) -> None:
        """Mercurial's pending index for hooks run with ``HG_PENDING``: ``name`` (``00changelog.i.a``)
        gets the index with the buffered entries; a split revlog's new data is appended to ``.d`` now
        (past its journaled size), while the real index stays as it is until :meth:`flush`.  A revlog
        the flush will split gets a split pending index (hg splits before it writes one); its
        ``.d``, which no reader of the inline ``.i`` opens, is written now."""
        self._journal_sizes()
        if self._splits():
            self._write_split_data()
            self.vfs.replace(name, self._split_index())
            return
        current = self.vfs.read(self.index_path) if self.vfs.exists(self.index_path) else b""
        if self.inline:
            extra = _batched(self._inline_pending())
        else:
            self._append_data()
            extra = iter([bytes(self._pending_index)])
        self.vfs.replace(name, current)
        for block in extra:
            self.vfs.append(name, block)

    def _append_inline(self) -> None:
        """Append the buffered revisions to the inline ``.i``."""
        for block in _batched(self._inline_pending()):
            self.vfs.append(self.index_path, block)

    def _inline_pending(self) -> Iterator[bytes]:
        """The buffered revisions as an inline revlog stores them: each entry, then its chunk."""
        index = memoryview(self._pending_index)
        for i, chunk in enumerate(self._chunks.chunks()):
            yield index[i * ENTRY_SIZE:(i + 1) * ENTRY_SIZE].tobytes()
            yield chunk

    def _split(self) -> None:
        """Make the inline revlog ``.i`` + ``.d`` with the buffered revisions in.

        ``.d`` gets every chunk first (readers of the inline ``.i`` never open it).  The
        changelog (flushed at the commit) and a revlog this transaction made get the split
        index in ``.i`` now, in one rename: a reader sees the inline revlog as it was or the
        split one with every revision, nothing between.  Any other revlog other sessions may be
        reading gets it beside ``.i`` (``_split_aside``) until the commit.  The old ``.i`` is
        backed up and ``.d`` journaled, so a rollback (or ``hg recover`` after a killed writer)
        puts back the inline revlog alone.
        """
        self._write_split_data()
        self.journal.backup(self.logical_index)
        if self.changelog or not self._index_size_before:
            self.vfs.replace(self.index_path, self._split_index())
        else:
            self._split_aside()
        self.header &= ~FLAG_INLINE
        self.reader = self._written()

    def _split_aside(self) -> None:
        """Write the split index to ``split_index_path`` (noted in the journal as new: a rollback or
        ``hg recover`` removes it); ``.i`` stays the inline revlog it was (a manifest's gets the
        buffered revisions appended, ``_inline_too``) until :meth:`finish_split` at the commit,
        as hg's revlog.py ``_enforceinlinesize`` leaves it until its transaction closes."""
        logical = split_index_path(self.logical_index)
        self.journal.backup(logical)
        if self._inline_too:
            self._append_inline()
        self.split_index = logical
        self.index_file = self.journal.encode(logical)
        self.vfs.replace(self.index_file, self._split_index())

    def finish_split(self) -> None:
        """At the commit, before the changelog that names its revisions is written: the split index
        waiting beside ``.i`` replaces it, in one rename."""
        if self.split_index is not None:
            self.vfs.rename(self.index_file, self.index_path)
            self.split_index = None
            self.index_file = self.index_path

    def successor(self) -> RevlogWriter:
        """A writer that goes on from this released one's revisions as written, its split
        waiting for the commit too (a second group of one file)."""
        index = parse_index(self.vfs.read(self.index_file), None, self.header)
        writer = RevlogWriter(Revlog(self.vfs, self.index_path, index, self.logical_index), self.journal,
                              self.compressor, sparse=self.sparse)
        writer.split_index, writer.index_file = self.split_index, self.index_file
        writer._split_data = writer._journaled = True
        return writer

    def _write_split_data(self) -> None:
        """Bring ``.d`` up to date for a split: the inline revlog's chunks (written once, in a
        file of its own: one a past writer left beside it is backed up and replaced), then the
        buffered ones not in it yet."""
        if not self._split_data:
            written = self.vfs.read(self.index_path) if self.vfs.exists(self.index_path) else b""
            reader = Revlog(self.vfs, self.index_path, parse_index(written, None, self.header))
            self.journal.backup(self.logical_data)
            self.vfs.replace(self.data_path, b"".join(reader.raw_chunk(r) for r in range(len(reader))))
            self._split_data = True
        self._append_data()

    def _split_index(self) -> bytes:
        """Every entry, written and buffered, as a split revlog's index (the header without inline)."""
        packed = bytearray()
        for entry in self.entries:
            packed += INDEX_ENTRY.pack(*entry)
        if packed:
            packed[:4] = struct.pack(">I", self.header & ~FLAG_INLINE)
        return bytes(packed)
