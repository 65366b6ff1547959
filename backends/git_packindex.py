"""A read-only view of one git pack's ``.idx`` (version 2) in pack order.

gitformat-pack(5): the index lists object names sorted by name, then a CRC
table, then 4-byte offsets (high bit set: index into an 8-byte table).  Names
and the two trailing checksums are ``raw_len`` bytes: 20 in a SHA-1
repository, 32 in a SHA-256 one (same version 2 layout; the file does not say
which, so the caller passes the repository's ``object_format_of(...).raw_len``).  Fast
serving needs the other order too: "pack order" (ascending offset), which is
the bit order of a pack bitmap, and the end of each stored entry, which is the
start of the next one (or the trailing checksum).

A ``PackIndexView`` is immutable once built and holds no file handle, so one
view can be shared between threads and cached across requests.
"""

from __future__ import annotations

import hashlib
import mmap
import operator
import os
import stat
import struct
import sys
import threading
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from functools import lru_cache, partial
from itertools import compress, islice, repeat
from typing import Generic, TypeVar, overload

IDX_MAGIC = b"\377tOc"
IDX_VERSION = 2
SHA_LEN = 20
"""The raw id length of SHA-1, every function's default ``raw_len``."""
FANOUT_SIZE = 256 * 4
LARGE_OFFSET_FLAG = 0x80000000
MAX_CACHED_VIEWS = 16
"""Views kept whatever their size: the packs of the repositories in use, large ones included."""
MAX_CACHED_VIEW_OBJECTS = 2_000_000
"""Past ``MAX_CACHED_VIEWS``, more views are kept while all of them hold no more objects than this
(a view takes about 36 bytes an object, ``TableView``: 72 MB; it took 150 when the bound was 500,000).  A repository gathers a pack a push until its
repack (50 packs by default): with views kept by count alone, one of 31 packs had each of its
fetches build every view again, 70 ms of CPU for a fetch that takes 23 with them kept."""
MAX_VIEWS_KEPT = 4096
"""Views kept at most, however small."""
MAPPED_VIEW_MAX_OBJECTS = 262_144
"""A pack of no more objects than this has its view's names mapped to their positions as well (a
dictionary: about 130 bytes more an object, weighed as ``MAPPED_WEIGHT`` objects against
``MAX_CACHED_VIEW_OBJECTS``): a look-up in it costs a fifth of the binary search, and a walk of the
bench corpus's trees (its 54,500 objects' pack) looks up some 58,000 names (its first ``git fetch
--deepen=1``: 0.12-0.13 s of CPU by binary search, 0.09-0.10 with the map).  Larger packs' views
keep to their name table and columns.  The map is made once the view has answered a quarter of its
objects' look-ups by binary search (``MAP_AFTER_LOOKUPS``): a request that looks up a few names
(a shallow clone's ``git fetch --deepen=1`` of a pack of 200,000 objects: 1,100) does not pay for
it (80 ms of the 0.2 s a cold view of that pack took to build), nor one that looks up fewer than
the map would save (a map costs 0.4 us an object to make and saves about 0.5 us a look-up: the
first ``--deepen=1`` of a corpus of 197,547 objects looked up 15,800 names, and made the map
after a sixteenth, 0.08 s of its 0.31)."""
MAP_AFTER_LOOKUPS = 4
"""A mappable view maps its names after as many binary searches as its objects, divided by this."""
TABLE_AFTER_POSITIONS = 16
"""A ``TableView`` answers ``position`` by a binary search of ``offsets`` (0.4 us more than a table
look-up) for as many look-ups as its objects divided by this, then makes ``idx_to_pos`` (with the
``.rev``, its inverse: 20 ms for 261,000 objects): a full clone looks up its tips and tags (a few
hundred), a walk of trees a name an entry."""
MAPPED_WEIGHT = 5
"""What an object of a mapped view weighs against ``MAX_CACHED_VIEW_OBJECTS`` (its 36 bytes and the
map's: some 170 bytes, where an object of a view without one weighs 1)."""


class UnsupportedIndex(Exception):
    """The index is not a pack index (of ``raw_len``-byte names) this module can read."""


class PackIndexView:
    """Object names and offsets of one pack, in pack order, from tables given whole: ``names`` (pack
    order), ``offsets`` (ascending), ``idx_to_pos`` (index order to pack order) and ``_pos_of`` (name to
    pack position).  A multi-pack index's pseudo-pack (``backends.git_midx``) is such a view; a pack's
    own ``.idx`` is read into a ``TableView`` (``read_index``), which holds its name table as one buffer."""

    def __init__(self, pack_path: str, pack_size: int, checksum: bytes, names: Sequence[bytes],
                 offsets: array[int], idx_to_pos: array[int], _pos_of: dict[bytes, int],
                 raw_len: int = SHA_LEN) -> None:
        self.pack_path = pack_path
        self.pack_size = pack_size
        self.checksum = checksum
        self.names = names
        """Pack order."""
        self.offsets = offsets
        """Pack order, ascending (an ``array``)."""
        self.idx_to_pos = idx_to_pos
        """Index (name) order -> pack order (an ``array``)."""
        self._pos_of = _pos_of
        self.raw_len = raw_len
        """Bytes of a name and of the pack's trailing checksum."""

    @property
    def has_pack_order(self) -> bool:
        """Whether pack order is made yet (a view given its tables whole has it)."""
        return True

    def __len__(self) -> int:
        return len(self.names)

    @property
    def weight(self) -> int:
        """What this view weighs against ``MAX_CACHED_VIEW_OBJECTS``: its objects, each weighing
        ``MAPPED_WEIGHT`` where their names are mapped."""
        return len(self) * MAPPED_WEIGHT

    def position(self, sha: bytes) -> int | None:
        """Pack-order position of a binary object name, or None."""
        return self._pos_of.get(sha)

    def name_at_index(self, i: int) -> bytes:
        """The name at index (name order) position ``i``: what a pack bitmap's entries name."""
        return self.names[self.idx_to_pos[i]]

    def make_names_order(self) -> None:
        """Make the whole pack order now, names in pack order included (a view given its tables
        whole has it): for a request that will name stored deltas' bases and look up many positions."""

    def contains(self, sha: bytes) -> bool:
        """Whether the pack holds the object named ``sha`` (binary)."""
        return self.position(sha) is not None

    def offset_of(self, sha: bytes) -> int | None:
        """The pack offset of the object named ``sha`` (binary), or None."""
        pos = self.position(sha)
        return None if pos is None else int(self.offsets[pos])

    def find_many(self, wanted: set[bytes]) -> tuple[list[bytes], list[int]]:
        """The names of ``wanted`` this pack holds, and the pack offset of each (C-level maps over
        the fewer of ``wanted`` and the pack's names, no per-name Python step: of a store's many
        small packs, each costs its size, not the push's links)."""
        if len(self.names) < len(wanted):
            found = list(filter(wanted.__contains__, self.names))
        else:
            found = list(filter(self._pos_of.__contains__, wanted))
        return found, list(map(self.offsets.__getitem__, map(self._pos_of.__getitem__, found)))

    def position_at_offset(self, offset: int) -> int | None:
        """Pack-order position of the entry starting exactly at ``offset``."""
        pos = bisect_left(self.offsets, offset)
        if pos < len(self.offsets) and self.offsets[pos] == offset:
            return pos
        return None

    def entry_end(self, pos: int) -> int:
        """Where the stored entry at ``pos`` ends (exclusive)."""
        if pos + 1 < len(self.offsets):
            return int(self.offsets[pos + 1])
        return self.pack_size - self.raw_len


class TableView(PackIndexView):
    """The view of one pack's ``.idx``: its name table kept as one buffer (index order, as the file
    has it) and looked up in place, beside 4-byte columns: the first four bytes of each name (where a
    lookup's binary search runs, in C) and the offsets in index order, which answer a look-up of an
    object's offset (``offset_of``, ``contains``, ``find_many``: reading objects, a push's presence
    checks).  Pack order is made in two parts, each when first asked for, from the pack's ``.rev``
    when it has one that fits, else sorted: ``offsets`` (ascending: a bitmap's bits' entries, the end
    of a stored entry, ``position`` by a binary search of them), and the permutation between the two
    orders (``names`` in pack order, ``idx_to_pos``: stored deltas sent against a base named, a
    walk's many look-ups).  A full clone needs only the first (a sort of plain offsets, a fifth of
    the pair's cost without a ``.rev``; none of the permutation's inverse with one); a request
    that only looks names up, neither.

    About 36 bytes an object (SHA-1) once pack order is made, a bit more than the ``.idx`` itself; a
    pack of up to ``MAPPED_VIEW_MAX_OBJECTS`` has its names mapped to their index positions as well.
    It was a bytes object, a dictionary entry and a tuple slot an object (about 150 bytes): a million
    objects' view held 165 MiB and took 1.5 s to build."""

    def __init__(self, pack_path: str, pack_size: int, checksum: bytes, table: bytes,
                 idx_offsets: array[int], raw_len: int = SHA_LEN,
                 reverse_index: Callable[[], array[int] | None] | None = None) -> None:
        """``table``: the names in index order (sorted), ``raw_len`` bytes each; ``idx_offsets``: their
        pack offsets, in the same order; ``reverse_index``: gives the index position of each object in
        pack order if the pack's reverse index has it (``_reverse_index``), asked when pack order is
        first needed and used when its offsets do ascend."""
        count = len(idx_offsets)
        self.pack_path = pack_path
        self.pack_size = pack_size
        self.checksum = checksum
        self.raw_len = raw_len
        self._pos_of = {}
        # (no names, offsets nor idx_to_pos yet: ``__getattr__`` makes them when first asked for)
        self._table = table
        self._count = count
        self._idx_offsets = idx_offsets
        """Each object's pack offset, in index order."""
        self._reverse_index = reverse_index
        self._by_pos: array[int] | None = None
        """Each pack position's index position, once known (a ``.rev``'s, or sorted for ``names``)."""
        self._to_pos: array[int] | None = None
        """``idx_to_pos`` once made: ``position`` answers from it, else by a binary search of ``offsets``."""
        self._searches_to_table = count // TABLE_AFTER_POSITIONS
        """``position`` look-ups by binary search of ``offsets`` before ``idx_to_pos`` is made."""
        self._order_lock = threading.Lock()
        self._prefixes = _prefixes(table, raw_len)
        """The first four bytes of each name as a number, in index order (ascending)."""
        self._fanout = array("I", map(partial(bisect_left, self._prefixes), range(0, 1 << 32, 1 << 24)))
        self._fanout.append(count)
        """Where the names of each first byte begin, and the count."""
        self._starts = range(0, count * raw_len, raw_len)
        self._key = partial(struct.Struct(f"{raw_len}s").unpack_from, table)
        self._mappable = 0 < count <= MAPPED_VIEW_MAX_OBJECTS
        self._searches_left = count // MAP_AFTER_LOOKUPS if self._mappable else -1
        """Binary searches before the names are mapped (-1: never; ``MAPPED_VIEW_MAX_OBJECTS``)."""
        self._index_of_name: dict[bytes, int] = {}
        """Each name's index position, once mapped (``_map_names``)."""

    def __len__(self) -> int:
        return self._count

    @property
    def weight(self) -> int:
        return self._count * (MAPPED_WEIGHT if self._mappable else 1)

    @property
    def has_pack_order(self) -> bool:
        """Whether ``offsets`` (pack order) is made yet."""
        return "offsets" in self.__dict__

    @property
    def has_pack_order_names(self) -> bool:
        """Whether the permutation between index and pack order (``names``, ``idx_to_pos``) is made yet."""
        return "names" in self.__dict__

    def __getattr__(self, name: str) -> object:
        """``offsets``, ``names`` and ``idx_to_pos``, asked for before they are made: made now (then
        they are plain attributes, read at no cost)."""
        if name == "offsets":
            self._make_offsets()
        elif name in _PERMUTATION_TABLES:
            self._make_permutation()
        else:
            raise AttributeError(name)
        return self.__dict__[name]

    def _rev_order(self) -> array[int] | None:
        """The ``.rev``'s pack order if it fits this index (read once; the order lock held)."""
        if self._reverse_index is not None:
            by_pos, self._reverse_index = self._reverse_index(), None
            if by_pos is not None and (offsets := _ascending_offsets(self._idx_offsets, by_pos)) is not None:
                self._by_pos = by_pos
                self.offsets = offsets
        return self._by_pos

    def _make_offsets(self) -> None:
        """Make ``offsets`` once (requests in several threads wait for the one that makes it): from the
        ``.rev``, else the index's offsets sorted alone (plain numbers: a third of the time a sort of
        them with their index positions takes, and none of its inverse)."""
        with self._order_lock:
            if "offsets" in self.__dict__ or self._rev_order() is not None:
                return
            self.offsets = _sorted_offsets(self._idx_offsets)

    def make_names_order(self) -> None:
        """Make ``names`` and ``idx_to_pos`` (and ``offsets``, if not made yet) now: a fetch that
        names bases of the deltas it sends makes them anyway, and its walk's first look-ups would
        otherwise sort the offsets alone first (a second sort without a ``.rev``)."""
        if self._to_pos is None:
            self._make_permutation()

    def _make_permutation(self) -> None:
        """Make ``names`` (pack order) and ``idx_to_pos`` once, and ``offsets`` with them if not made
        yet: from the ``.rev``, else the index positions sorted by their offsets."""
        with self._order_lock:
            if "names" in self.__dict__:
                return
            by_pos = self._rev_order()
            if by_pos is None:
                by_pos, offsets = _by_offset(self._idx_offsets)
                self._by_pos = by_pos
                if "offsets" not in self.__dict__:
                    self.offsets = offsets
            idx_to_pos = array("I", bytes(4 * self._count))
            deque(map(idx_to_pos.__setitem__, by_pos, range(self._count)), 0)  # (the inverse permutation, in C)
            self.idx_to_pos = self._to_pos = idx_to_pos
            self.names = _PackOrderNames(self._table, by_pos, self.raw_len)

    def _map_names(self) -> None:
        """Map each name to its index position (``MAPPED_VIEW_MAX_OBJECTS``).  Requests in several
        threads may do it at once: each makes the same map, and the last one made is kept."""
        raw_len, count = self.raw_len, self._count
        names = map(self._table.__getitem__, map(slice, self._starts, range(raw_len, (count + 1) * raw_len, raw_len)))
        self._index_of_name = dict(zip(names, range(count)))

    def index_of(self, sha: bytes) -> int | None:
        """Index-order position of a binary object name, or None: a binary search of the names' first
        four bytes within their first byte's bucket, then of the whole names among those sharing them."""
        raw_len = self.raw_len
        if len(sha) != raw_len:
            return None
        first = sha[0]
        lo, hi = self._fanout[first], self._fanout[first + 1]
        prefix = int.from_bytes(sha[:4], "big")
        i = bisect_left(self._prefixes, prefix, lo, hi)
        at = i * raw_len
        if self._table[at:at + raw_len] == sha:
            return i
        if i < hi and self._prefixes[i] == prefix:  # (names sharing their first four bytes)
            hi = bisect_right(self._prefixes, prefix, i, hi)
            key = (sha,)
            i = bisect_left(self._starts, key, i, hi, key=self._key)
            if i < hi and self._key(i * raw_len) == key:
                return i
        return None

    def _looked_up(self, sha: bytes) -> int | None:
        """``index_of``, by the names' map once it is made (after ``MAP_AFTER_LOOKUPS``)."""
        if self._index_of_name:
            return self._index_of_name.get(sha)
        if self._searches_left >= 0:
            self._searches_left -= 1
            if self._searches_left < 0:
                self._map_names()
                return self._index_of_name.get(sha)
        return self.index_of(sha)

    def position(self, sha: bytes) -> int | None:
        i = self._index_of_name.get(sha) if self._index_of_name else self._looked_up(sha)
        if i is None:
            return None
        if self._to_pos is not None:
            return self._to_pos[i]
        self._searches_to_table -= 1
        if self._searches_to_table < 0:
            self._make_permutation()
            return self.idx_to_pos[i]
        return bisect_left(self.offsets, self._idx_offsets[i])  # (offsets are distinct: its rank)

    def name_at_index(self, i: int) -> bytes:
        at = i * self.raw_len
        return self._table[at:at + self.raw_len]

    def contains(self, sha: bytes) -> bool:
        return self._looked_up(sha) is not None

    def offset_of(self, sha: bytes) -> int | None:
        i = self._looked_up(sha)
        return None if i is None else int(self._idx_offsets[i])

    def find_many(self, wanted: set[bytes]) -> tuple[list[bytes], list[int]]:
        """The names of ``wanted`` this pack holds, and the pack offset of each: few against many
        objects looked up one by one, else the name table read in one pass, ``SCAN_CHUNK`` names at a
        time, each chunk tested against ``wanted`` by C-level maps (pack order is not made)."""
        if not wanted or not self._count:
            return [], []
        offsets = self._idx_offsets.__getitem__
        if len(wanted) * SCAN_RATIO < self._count:
            found: list[bytes] = []
            positions: list[int] = []
            for sha in wanted:
                i = self.index_of(sha)
                if i is not None:
                    found.append(sha)
                    positions.append(i)
            return found, list(map(offsets, positions))
        names: list[bytes] = []
        at: list[int] = []
        contains, raw_len, table = wanted.__contains__, self.raw_len, self._table
        for start in range(0, self._count, SCAN_CHUNK):
            n = min(SCAN_CHUNK, self._count - start)
            chunk = _names_of(raw_len, n).unpack_from(table, start * raw_len)
            mask = bytes(map(contains, chunk))
            if 1 not in mask:
                continue
            names += compress(chunk, mask)
            at += compress(range(start, start + n), mask)
        return names, list(map(offsets, at))


_PERMUTATION_TABLES = frozenset(("names", "idx_to_pos"))
"""A ``TableView``'s attributes made with the permutation between its index and pack order."""


def _ascending_offsets(idx_offsets: array[int], by_pos: array[int]) -> array[int] | None:
    """The offsets in the pack order ``by_pos`` (a ``.rev``'s) gives, if it is a permutation of the
    index whose offsets ascend; else None."""
    if len(by_pos) != len(idx_offsets):
        return None
    try:
        offsets = array(idx_offsets.typecode, map(idx_offsets.__getitem__, by_pos))
    except IndexError:  # (a position past the index: not this pack's)
        return None
    if all(map(operator.lt, offsets, islice(offsets, 1, None))):
        return offsets  # (ascending offsets are a permutation of the pack's, each once)
    return None


def _sorted_offsets(idx_offsets: array[int]) -> array[int]:
    """The pack's offsets ascending: pack order's positions without the index positions (a sort of
    plain numbers, each of one digit in a pack below 1 GiB)."""
    return array(idx_offsets.typecode, sorted(idx_offsets))


def _by_offset(idx_offsets: array[int]) -> tuple[array[int], array[int]]:
    """Each pack position's index position, and the offsets ascending: each offset and index position
    as one number, sorted in place (a sort of the positions keyed by their offsets held a list of
    keys and one of positions, 84 MiB beside a million objects' view where this holds 46, for a
    tenth more time), then taken apart in C."""
    keyed = list(map(operator.or_, map(operator.lshift, idx_offsets, repeat(32)), range(len(idx_offsets))))
    keyed.sort()
    by_pos = array("I", map(_LOW_32.__and__, keyed))
    offsets = array(idx_offsets.typecode, map(operator.rshift, keyed, repeat(32)))
    del keyed
    return by_pos, offsets


class _PackOrderNames(Sequence[bytes]):
    """A ``TableView``'s names in pack order: each read from its name table when asked for."""

    __slots__ = ("_by_pos", "_raw_len", "_table")

    def __init__(self, table: bytes, by_pos: array[int], raw_len: int) -> None:
        self._table = table
        self._by_pos = by_pos
        self._raw_len = raw_len

    def __len__(self) -> int:
        return len(self._by_pos)

    @overload
    def __getitem__(self, pos: int) -> bytes: ...
    @overload
    def __getitem__(self, pos: slice) -> Sequence[bytes]: ...

    def __getitem__(self, pos: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(pos, slice):
            return [self[p] for p in range(len(self))[pos]]
        raw_len = self._raw_len
        at = self._by_pos[pos] * raw_len
        return self._table[at:at + raw_len]

    def __iter__(self) -> Iterator[bytes]:
        table, raw_len = self._table, self._raw_len
        for at in self._by_pos:
            at *= raw_len
            yield table[at:at + raw_len]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _PackOrderNames):
            return (self._raw_len, self._by_pos, self._table) == (other._raw_len, other._by_pos, other._table)
        return isinstance(other, Sequence) and len(self) == len(other) and all(map(bytes.__eq__, self, other))


def _prefixes(table: bytes, raw_len: int) -> array[int]:
    """The first four bytes of each ``raw_len``-byte name of ``table``, as big-endian numbers (C-level
    strided copies, no step a name)."""
    heads = bytearray(len(table) // raw_len * 4)
    for k in range(4):
        heads[k::4] = table[k::raw_len]
    words = array("I")
    words.frombytes(heads)
    if sys.byteorder == "little":
        words.byteswap()
    return words


def read_index(idx_path: str, pack_path: str, raw_len: int = SHA_LEN) -> PackIndexView:
    """Read a version-2 ``.idx`` of ``raw_len``-byte names (or a version-1 one of SHA-1 names)
    into a ``TableView``."""
    with open(idx_path, "rb") as f:
        data = f.read()
    pack_size = os.path.getsize(pack_path)
    checksum = data[len(data) - 2 * raw_len:len(data) - raw_len]
    if data[:4] != IDX_MAGIC:
        table, idx_offsets = _read_v1(data, idx_path, raw_len)
    elif int.from_bytes(data[4:8], "big") != IDX_VERSION:
        raise UnsupportedIndex(f"{idx_path}: not a version-1 or version-2 pack index")
    else:
        count = int.from_bytes(data[8 + FANOUT_SIZE - 4:8 + FANOUT_SIZE], "big")
        names_at = 8 + FANOUT_SIZE
        offsets_at = names_at + count * raw_len + count * 4
        large_at = offsets_at + count * 4
        if len(data) < large_at + 2 * raw_len or (len(data) - large_at - 2 * raw_len) % 8:
            raise UnsupportedIndex(f"{idx_path}: truncated, or not of {raw_len}-byte names")
        table = data[names_at:names_at + count * raw_len]
        raw_offsets = data[offsets_at:large_at]
        idx_offsets = _big_endian_u32(raw_offsets)
        if raw_offsets[::4].translate(None, _BELOW_HIGH_BIT):  # (a u32 whose first byte has its high bit set)
            idx_offsets = array("q", _resolve_large(idx_offsets, data, large_at))
    del data
    reverse_index = partial(_reverse_index, pack_path, len(idx_offsets), checksum, raw_len)
    return TableView(pack_path, pack_size, checksum, table, idx_offsets, raw_len, reverse_index)


REV_MAGIC = b"RIDX"
REV_HASH_IDS = {20: 1, 32: 2}
"""The hash function id a reverse index names (gitformat-pack(5)): SHA-1, SHA-256."""


def _reverse_index(pack_path: str, count: int, checksum: bytes, raw_len: int) -> array[int] | None:
    """The index positions of the pack's objects in pack order from its ``.rev`` (git writes one with
    ``pack.writeReverseIndex``, its default since 2.41): a million objects' pack order read in a few
    milliseconds, not sorted (about 0.5 s).  None when there is none, or it is not a regular file of
    the size ``count`` objects take (read no further), or not one of this pack (its header, the pack
    checksum it names, its own trailing checksum); ``TableView`` checks the order it gives."""
    path = pack_path[:-5] + ".rev" if pack_path.endswith(".pack") else pack_path + ".rev"
    size = 12 + 4 * count + 2 * raw_len
    try:  # (never blocks: a FIFO or a device in its place is not read)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return None
        data = os.read(fd, size + 1)
        while len(data) < size:  # (a short read of a regular file: the rest, up to its size)
            more = os.read(fd, size + 1 - len(data))
            if not more:
                break
            data += more
    except OSError:
        return None
    finally:
        os.close(fd)
    trailer = size - raw_len
    if (len(data) != size or data[:4] != REV_MAGIC
            or int.from_bytes(data[4:8], "big") != 1 or int.from_bytes(data[8:12], "big") != REV_HASH_IDS.get(raw_len)
            or data[trailer - raw_len:trailer] != checksum
            or hashlib.new(_HASH_NAMES[raw_len], memoryview(data)[:trailer]).digest() != data[trailer:]):
        return None
    return _big_endian_u32(data[12:12 + 4 * count])


_HASH_NAMES = {20: "sha1", 32: "sha256"}
"""The hash of a ``raw_len``-byte name, which a ``.rev``'s trailing checksum is."""


def _read_v1(data: bytes, idx_path: str, raw_len: int) -> tuple[bytes, array[int]]:
    """The name table and offsets of a version-1 index (git wrote them until 1.5.2, and writes them
    still with ``pack.indexVersion = 1``): the fanout, then a 4-byte offset and a name for each
    object, then the two checksums.  SHA-1 only."""
    count = int.from_bytes(data[FANOUT_SIZE - 4:FANOUT_SIZE], "big") if len(data) >= FANOUT_SIZE else -1
    width = 4 + raw_len
    if raw_len != SHA_LEN or count < 0 or len(data) != FANOUT_SIZE + count * width + 2 * raw_len:
        raise UnsupportedIndex(f"{idx_path}: not a pack index of {raw_len}-byte names, or truncated")
    end = FANOUT_SIZE + count * width
    table = b"".join(data[i + 4:i + width] for i in range(FANOUT_SIZE, end, width))
    offsets = array("q", (int.from_bytes(data[i:i + 4], "big") for i in range(FANOUT_SIZE, end, width)))
    return table, offsets


def _big_endian_u32(raw: bytes) -> array[int]:
    words = array("I")  # (4 bytes: checked below)
    words.frombytes(raw)
    if sys.byteorder == "little":
        words.byteswap()
    return words


def _resolve_large(offsets: Iterable[int], data: bytes, large_at: int) -> list[int]:
    result = []
    for o in offsets:
        if o & LARGE_OFFSET_FLAG:
            at = large_at + (o & ~LARGE_OFFSET_FLAG) * 8
            o = int.from_bytes(data[at:at + 8], "big")
        result.append(o)
    return result


if array("I").itemsize != 4:  # pragma: no cover - exotic platforms
    raise ImportError("backends.git_packindex needs array('I') of 4-byte items")


K = TypeVar("K")
V = TypeVar("V")


class ObjectsBoundCache(Generic[K, V]):
    """Values by key, least recently used evicted: ``limit`` of any size, more while they hold no
    more than ``max_objects`` objects in all (``objects_of`` counts a value's), ``max_kept`` at
    most.  Index views (``_ViewCache``) and multi-pack index layouts (``backends.git_midx``) are
    kept so: a repository's large packs whatever their size, and the many small ones of others."""

    def __init__(self, limit: int, max_objects: int, objects_of: Callable[[V], int],
                 max_kept: int = MAX_VIEWS_KEPT) -> None:
        self._limit = limit
        self._max_objects = max_objects
        self._objects_of = objects_of
        self._max_kept = max_kept
        self._values: OrderedDict[K, V] = OrderedDict()
        self._objects = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept for ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def peek(self, key: K) -> V | None:
        """The value kept for ``key``, its place left as it is."""
        with self._lock:
            return self._values.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            old = self._values.pop(key, None)  # (made by another request meanwhile)
            self._objects += self._objects_of(value) - (self._objects_of(old) if old is not None else 0)
            self._values[key] = value
            while len(self._values) > self._limit and (self._objects > self._max_objects
                                                       or len(self._values) > self._max_kept):
                _, dropped = self._values.popitem(last=False)
                self._objects -= self._objects_of(dropped)

    def drop_where(self, match: Callable[[K], bool]) -> int:
        """Let go of the values whose key ``match`` (``backends.lru.naming_under``); how many went."""
        with self._lock:
            gone = [key for key in self._values if match(key)]
            for key in gone:
                self._objects -= self._objects_of(self._values.pop(key))
            return len(gone)

    def __len__(self) -> int:
        return len(self._values)


def _weight_of(view: PackIndexView) -> int:
    return view.weight


class _ViewCache:
    """Views keyed by (path, size, mtime, raw_len) in an ``ObjectsBoundCache``: ``limit`` of any
    size, more while they hold no more than ``max_objects`` objects in all."""

    def __init__(self, limit: int, max_objects: int = MAX_CACHED_VIEW_OBJECTS) -> None:
        self._views: ObjectsBoundCache[tuple[str, int, int, int], PackIndexView] = ObjectsBoundCache(
            limit, max_objects, _weight_of)
        self._building: dict[tuple[str, int, int, int], threading.Lock] = {}
        """A lock per view being built: the requests that want it meanwhile wait for that one build."""
        self._building_lock = threading.Lock()

    def cached(self, idx_path: str, raw_len: int = SHA_LEN) -> PackIndexView | None:
        """The view of ``idx_path`` if one is cached for its current size and mtime; never builds."""
        st = os.stat(idx_path)
        return self._views.peek((idx_path, st.st_size, st.st_mtime_ns, raw_len))

    def get(self, idx_path: str, pack_path: str, raw_len: int = SHA_LEN) -> PackIndexView:
        st = os.stat(idx_path)
        key = (idx_path, st.st_size, st.st_mtime_ns, raw_len)
        view = self._views.get(key)
        if view is not None:
            return view
        # One build a view: eight clones arriving together at a cold server each built the same view
        # (up to eight builds at once for the bench corpus's 54,500 objects, about 70 MiB of Python
        # objects), and the peak depended on how many overlapped.
        with self._building_lock:
            build = self._building.setdefault(key, threading.Lock())
        try:
            with build:
                view = self._views.get(key)  # built by the request waited for
                if view is None:
                    view = read_index(idx_path, pack_path, raw_len)
                    self._views.put(key, view)
        finally:
            with self._building_lock:
                if self._building.get(key) is build:
                    del self._building[key]
        return view

    def __len__(self) -> int:
        return len(self._views)


_CACHE = _ViewCache(MAX_CACHED_VIEWS)


def forget_views(match: Callable[[object], bool]) -> int:
    """Let go of the kept views of the ``.idx`` files whose paths ``match`` (a repository found gone)."""
    return _CACHE._views.drop_where(match)


def index_view(pack_basename: str, raw_len: int = SHA_LEN) -> PackIndexView:
    """The (cached) view of ``<basename>.idx`` for ``<basename>.pack`` (names of ``raw_len`` bytes)."""
    return _CACHE.get(pack_basename + ".idx", pack_basename + ".pack", raw_len)


def pack_basenames(pack_dir: str) -> list[str]:
    """``pack_dir/<name>`` of every complete pack (a ``.pack`` with its ``.idx``), by name."""
    try:
        names = sorted(os.listdir(pack_dir))
    except FileNotFoundError:
        return []
    present = set(names)
    return [os.path.join(pack_dir, name[:-5]) for name in names
            if name.endswith(".pack") and name[:-5] + ".idx" in present]


def pack_views(pack_dir: str, raw_len: int = SHA_LEN) -> list[PackIndexView]:
    """The cached views of every complete pack in ``pack_dir``, by name (built where missing)."""
    return [index_view(base, raw_len) for base in pack_basenames(pack_dir)]


def cached_view(pack_basename: str, raw_len: int = SHA_LEN) -> PackIndexView | None:
    """The view of ``<basename>.idx`` if it is cached; None rather than building it."""
    return _CACHE.cached(pack_basename + ".idx", raw_len)


class MappedIndex:
    """One pack's version-2 ``.idx`` mapped read-only and looked up in place: a binary search of the
    name table between the fanout's bounds, run by ``bisect`` in C (the names read through a
    ``struct``), with no view built and nothing held but the map (the page cache's pages, not the
    server's memory).  A lookup costs a few microseconds: dulwich's own (``contains_packed``) took
    three times that, a ``stat`` of ``multi-pack-index`` at every call half of it.

    The map is made when the index is opened: a pack replaced meanwhile is looked up as it was,
    and its objects are then in its successor (``MappedPacks`` rescans for it)."""

    __slots__ = ("_fanout", "_idx", "_key", "_large_at", "_names", "_offsets_at", "_raw_len", "base", "checksum",
                 "count")

    def __init__(self, base: str, idx: mmap.mmap, raw_len: int = SHA_LEN) -> None:
        """``idx``: the map of ``<base>.idx``, closed by ``close``.  ``UnsupportedIndex`` when it is not a
        version-2 index of ``raw_len``-byte names (the map is then the caller's to close)."""
        header_end = 8 + FANOUT_SIZE
        if len(idx) < header_end or idx[:4] != IDX_MAGIC or int.from_bytes(idx[4:8], "big") != IDX_VERSION:
            raise UnsupportedIndex(f"{base}.idx: not a version-2 pack index")
        fanout = (0, *_FANOUT.unpack_from(idx, 8))
        count = fanout[-1]
        offsets_at = header_end + count * (raw_len + 4)
        large_at = offsets_at + count * 4
        if len(idx) < large_at + 2 * raw_len or any(map(int.__gt__, fanout, fanout[1:])):
            raise UnsupportedIndex(f"{base}.idx: truncated, or not of {raw_len}-byte names")
        self.base = base
        self.count = count
        self.checksum = idx[len(idx) - 2 * raw_len:len(idx) - raw_len]
        """The pack's trailing checksum, as the index says it."""
        self._idx = idx
        self._fanout = fanout
        self._names = range(header_end, header_end + count * raw_len, raw_len)
        """Where each name starts, by index position."""
        self._key = partial(struct.Struct(f"{raw_len}s").unpack_from, idx)
        """Offset in the index -> ``(name,)``."""
        self._offsets_at = offsets_at
        self._large_at = large_at
        self._raw_len = raw_len

    @classmethod
    def open(cls, base: str, raw_len: int = SHA_LEN) -> MappedIndex | None:
        """The index of the pack ``base`` mapped; None when it is gone (``UnsupportedIndex`` when it
        is empty or not a version-2 index of ``raw_len``-byte names)."""
        try:
            fd = os.open(base + ".idx", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        try:
            idx = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        except ValueError as exc:  # (an empty file)
            raise UnsupportedIndex(f"{base}.idx: empty") from exc
        finally:
            os.close(fd)
        try:
            return cls(base, idx, raw_len)
        except UnsupportedIndex:
            idx.close()
            raise

    def position(self, binsha: bytes) -> int | None:
        """The index (name order) position of a binary object name, or None."""
        first = binsha[0]
        lo, hi = self._fanout[first], self._fanout[first + 1]
        key = (binsha,)
        i = bisect_left(self._names, key, lo, hi, key=self._key)
        if i < hi and self._key(self._names[i]) == key:
            return i
        return None

    def offset_at(self, i: int) -> int:
        """The pack offset of the object at index position ``i``."""
        offset: int = _U32.unpack_from(self._idx, self._offsets_at + i * 4)[0]
        if offset & LARGE_OFFSET_FLAG:
            large: int = _U64.unpack_from(self._idx, self._large_at + (offset & ~LARGE_OFFSET_FLAG) * 8)[0]
            return large
        return offset

    def offset(self, binsha: bytes) -> int | None:
        """The pack offset of the object named ``binsha``, or None when the pack does not hold it."""
        i = self.position(binsha)
        return None if i is None else self.offset_at(i)

    def find_many(self, wanted: set[bytes]) -> tuple[list[bytes], list[int]]:
        """The names of ``wanted`` this pack holds, and the pack offset of each.

        Few names against a large index are looked up one by one (``position``, a binary search each);
        many are found in one pass over the name table, ``SCAN_CHUNK`` names at a time, each chunk
        unpacked, tested against ``wanted`` and its offsets read by C-level maps (every name of an index
        of 100,000: a fifteenth of the time one by one takes, and no view built)."""
        if not wanted or not self.count:
            return [], []
        names: list[bytes] = []
        offsets: list[int] = []
        if len(wanted) * SCAN_RATIO < self.count:
            for sha in wanted:
                i = self.position(sha)
                if i is not None:
                    names.append(sha)
                    offsets.append(self.offset_at(i))
            return names, offsets
        idx, raw_len, contains = self._idx, self._raw_len, wanted.__contains__
        names_at = self._names.start
        for start in range(0, self.count, SCAN_CHUNK):
            n = min(SCAN_CHUNK, self.count - start)
            chunk = _names_of(raw_len, n).unpack_from(idx, names_at + start * raw_len)
            mask = bytes(map(contains, chunk))
            if 1 not in mask:
                continue
            names += compress(chunk, mask)
            at = self._offsets_at + start * 4
            offsets += compress(_big_endian_u32(idx[at:at + n * 4]), mask)
        if offsets and max(offsets) & LARGE_OFFSET_FLAG:
            offsets = [o if not o & LARGE_OFFSET_FLAG
                       else _U64.unpack_from(idx, self._large_at + (o & ~LARGE_OFFSET_FLAG) * 8)[0] for o in offsets]
        return names, offsets

    def close(self) -> None:
        self._idx.close()


SCAN_CHUNK = 4096
"""Names of an index unpacked at a time by ``MappedIndex.find_many`` (80 KB of SHA-1 names)."""
SCAN_RATIO = 40
"""``MappedIndex.find_many`` reads the whole name table when it looks for at least one name in this
many of the index's objects (a binary search costs about as much as reading 50 names: of 100,000,
1,000 names took 11 ms one by one and 27 ms in a pass, 4,000 60 ms and 32 ms)."""


@lru_cache(maxsize=16)
def _names_of(raw_len: int, count: int) -> struct.Struct:
    """A ``struct`` that unpacks ``count`` names of ``raw_len`` bytes in one call."""
    return struct.Struct(f"{raw_len}s" * count)


_LOW_32 = 0xFFFFFFFF
_BELOW_HIGH_BIT = bytes(range(0x80))
"""The bytes without their high bit set: what is left of a big-endian column's first bytes without
them says whether a 4-byte offset is a large one's index (a C-level pass; ``max`` of the column
took a step an offset)."""
_FANOUT = struct.Struct(">256I")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class MappedPacks:
    """Lookups in the packs of one pack directory through their mapped indexes (``MappedIndex``),
    those of ``skip`` left out (packs looked up through a view): where ``Presence`` and
    ``PackObjectReader`` find the objects of packs too large to view for one push.

    The directory is listed, and the indexes mapped, on the first lookup.  ``complete``: whether
    every pack is looked up here.  It is not when an index is not one ``MappedIndex`` reads (a
    version-1 index, a damaged one), or a multi-pack index may name a pack with no ``.idx`` of its
    own; the caller then asks dulwich about what is not found here.  ``find(…, rescan=True)`` lists
    the directory again when an object is not found (as dulwich does): a pack that arrived since
    (another push's, a repack's that replaced packs mapped here) is mapped and looked in.

    A pack looked in more than ``VIEW_AFTER_LOOKUPS`` times its object count gets its view (built
    and kept in the views' cache, within its budget), which answers from then on: a lookup in a
    view is a tenth of one in place, and building it costs about as much as a third of its objects'
    lookups.  A batch (``find_many``: a push's links, typed at once) neither counts nor builds one:
    it reads the index's name table in one pass, which costs less than the view.
    """

    def __init__(self, pack_dir: str | Sequence[str], raw_len: int = SHA_LEN, skip: Collection[str] = ()) -> None:
        """``pack_dir``: a pack directory, or several (a fork's own, then those it borrows from:
        ``git_objects.pack_dirs``), each listed and rescanned alike."""
        self._pack_dirs = [pack_dir] if isinstance(pack_dir, str) else list(pack_dir)
        self._raw_len = raw_len
        self._skip = frozenset(skip)
        self._listed: set[str] | None = None
        self._indexes: list[MappedIndex] = []
        self._views: list[PackIndexView | None] = []
        """The view of each pack of ``_indexes`` once it has one."""
        self._lookups: list[int] = []
        """Lookups in each pack of ``_indexes`` through its mapped index."""
        self._last = 0
        """The index of the pack that held the last object found (looked in first)."""
        self.complete = True

    def _add_new(self) -> bool:
        """Map the indexes of the packs listed now and not before; whether there was one."""
        listed = self._listed if self._listed is not None else set()
        first = self._listed is None
        self._listed = listed
        added = False
        for pack_dir in self._pack_dirs:
            try:
                names = set(os.listdir(pack_dir))
            except (FileNotFoundError, NotADirectoryError):
                names = set()
            for name in sorted(names):
                if not name.endswith(".pack"):
                    continue
                base = os.path.join(pack_dir, name[:-5])
                if base in listed or base + ".pack" in self._skip:
                    continue
                if name[:-5] + ".idx" not in names:
                    if MIDX_FILE in names:
                        self.complete = False  # (a multi-pack index may hold its objects)
                    continue
                listed.add(base)
                try:
                    index = MappedIndex.open(base, self._raw_len)
                except UnsupportedIndex:
                    self.complete = False
                    continue
                if index is not None:
                    self._indexes.append(index)
                    added = True
        if first:  # largest first: most objects are there
            self._indexes.sort(key=lambda index: -index.count)
        missing = len(self._indexes) - len(self._views)
        self._views += [None] * missing
        self._lookups += [0] * missing
        return added

    def _offset_in(self, n: int, binsha: bytes) -> int | None:
        view = self._views[n]
        if view is not None:
            return view.offset_of(binsha)
        index = self._indexes[n]
        lookups = self._lookups[n] = self._lookups[n] + 1
        if lookups > index.count * VIEW_AFTER_LOOKUPS:
            self._view(n)
        return index.offset(binsha)

    def _view(self, n: int) -> None:
        """Give the pack ``n`` its view, if its index is still the one mapped (else look on in place)."""
        index = self._indexes[n]
        self._lookups[n] = -(1 << 62)  # (tried once)
        try:
            view = index_view(index.base, self._raw_len)
        except (OSError, UnsupportedIndex):
            return
        if view.checksum == index.checksum and len(view) == index.count:
            self._views[n] = view

    def find(self, binsha: bytes, rescan: bool = False) -> tuple[str, int] | None:
        """``(pack path, offset)`` of an object (a binary name), or None."""
        if self._listed is None:
            self._add_new()
        if len(binsha) != self._raw_len:
            return None
        indexes = self._indexes
        if indexes:
            offset = self._offset_in(self._last, binsha)
            if offset is not None:
                return indexes[self._last].base + ".pack", offset
        for n in range(len(indexes)):
            if n != self._last:
                offset = self._offset_in(n, binsha)
                if offset is not None:
                    self._last = n
                    return indexes[n].base + ".pack", offset
        if rescan:
            known = len(indexes)
            if self._add_new():
                for n in range(known, len(indexes)):
                    offset = self._offset_in(n, binsha)
                    if offset is not None:
                        self._last = n
                        return indexes[n].base + ".pack", offset
        return None

    def find_many(self, wanted: set[bytes], rescan: bool = False) -> list[tuple[str, list[bytes], list[int]]]:
        """The objects of ``wanted`` (binary names) found here: for each pack that holds some, its
        path, their names and their offsets, each pack looked in once for all of them (its view's
        dictionary, else ``MappedIndex.find_many``); no lookup is counted towards a view, none is
        built.  ``rescan``: the directory is listed again when some are not found, as ``find`` does."""
        if self._listed is None:
            self._add_new()
        found: list[tuple[str, list[bytes], list[int]]] = []
        remaining = wanted
        known = 0
        while True:
            for n in range(known, len(self._indexes)):
                if not remaining:
                    break
                view = self._views[n]
                names, offsets = (view if view is not None else self._indexes[n]).find_many(remaining)
                if names:
                    found.append((self._indexes[n].base + ".pack", names, offsets))
                    remaining = set() if len(names) == len(remaining) else remaining.difference(names)
            if not (rescan and remaining):
                return found
            known = len(self._indexes)
            rescan = False
            if not self._add_new():
                return found

    def index_of(self, pack_path: str) -> MappedIndex | None:
        """The mapped index of the pack at ``pack_path`` (``…/pack-<hash>.pack``), if it is mapped."""
        for index in self._indexes:
            if index.base + ".pack" == pack_path:
                return index
        return None

    def drop(self, pack_path: str) -> None:
        """Look no more in the pack at ``pack_path`` (it is gone); it stays listed."""
        kept = [n for n, index in enumerate(self._indexes) if index.base + ".pack" != pack_path]
        for n, index in enumerate(self._indexes):
            if n not in kept:
                index.close()
        self._indexes = [self._indexes[n] for n in kept]
        self._views = [self._views[n] for n in kept]
        self._lookups = [self._lookups[n] for n in kept]
        self._last = 0

    def close(self) -> None:
        indexes, self._indexes, self._views, self._lookups = self._indexes, [], [], []
        self._last = 0
        for index in indexes:
            index.close()


VIEW_AFTER_LOOKUPS = 0.25
"""Lookups in place, per object of the pack, after which ``MappedPacks`` gives a pack its view."""
MIDX_FILE = "multi-pack-index"


class StoredTypes:
    """The type each object's pack entry says it is stored as, looked up in the ``.idx`` files in
    place (``MappedIndex``) and read from the entry's first byte: no view is built and nothing
    inflated.  A cold advertisement peels every ref: 5,000 branches read as dulwich reads them
    (each commit found and inflated) took 85 ms, this 9.

    One per look (``close`` it): the files are mapped when it is made (a pack replaced meanwhile
    stays readable as it was).  A pack whose files are not a version 2 index and its pack is
    left out, so its objects are not found here."""

    def __init__(self, pack_dir: str | Sequence[str], raw_len: int = SHA_LEN) -> None:
        """``pack_dir``: a pack directory, or several (a fork's own, then those it borrows from)."""
        self._raw_len = raw_len
        self._packs: list[tuple[MappedIndex, mmap.mmap]] = []
        directories = [pack_dir] if isinstance(pack_dir, str) else list(pack_dir)
        for base in (name for directory in directories for name in pack_basenames(directory)):
            try:
                index = MappedIndex.open(base, raw_len)
            except UnsupportedIndex:
                continue
            if index is None:
                continue
            try:
                fd = os.open(base + ".pack", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                try:
                    pack = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
                finally:
                    os.close(fd)
            except (OSError, ValueError):  # gone meanwhile, empty, unmappable: not looked in
                index.close()
                continue
            self._packs.append((index, pack))

    def type_of(self, binsha: bytes) -> int | None:
        """The stored type of the object named ``binsha`` (1-4, or a delta's 6 or 7); None when no
        pack holds it (or its entry lies outside its pack)."""
        if len(binsha) != self._raw_len:
            return None
        for index, pack in self._packs:
            offset = index.offset(binsha)
            if offset is not None:
                if offset + 1 > len(pack) - self._raw_len:
                    return None
                return (pack[offset] >> 4) & 7
        return None

    def whole_entries(self, binshas: Collection[bytes]) -> dict[bytes, bytes | None]:
        """For each of ``binshas`` a pack stores whole (no delta), by its binary name: None for a
        commit, tree or blob (it peels to itself), the hex id on the first line of a tag (``object
        <hex>``, the entry's first bytes alone inflated).  Left out: what no pack holds, a delta, a
        tag whose first line is not so.  The packs' name tables are read in passes
        (``MappedIndex.find_many``): a mirror's 100,000 annotated tags were each looked up and read
        whole by dulwich at every advertisement of a ``packed-refs`` with no ``^`` line (1.9 s of
        server CPU; git's upload-pack 0.3)."""
        wanted = set(binshas)
        found: dict[bytes, bytes | None] = {}
        line = 8 + 2 * self._raw_len  # ``object <hex>\n``
        for index, pack in self._packs:
            if not wanted:
                break
            names, offsets = index.find_many(wanted)
            wanted.difference_update(names)
            end = len(pack) - self._raw_len
            if offsets and max(offsets) >= end:  # (an entry outside its pack: left out)
                inside = list(map(operator.lt, offsets, repeat(end)))
                names, offsets = list(compress(names, inside)), list(compress(offsets, inside))
            # each entry's first two bytes by C-level passes (a Python loop an entry took a third of
            # the time): the type, and whether the size goes on past the second byte
            kinds = bytes(map(pack.__getitem__, offsets)).translate(_KIND_OF_BYTE)
            found.update(zip(compress(names, kinds.translate(_IS_WHOLE_OTHER)), repeat(None)))
            tagged = kinds.translate(_IS_TAG)
            if 1 not in tagged:
                continue
            tags, at = list(compress(names, tagged)), list(compress(offsets, tagged))
            heads = bytes(map(pack.__getitem__, at)).translate(_MORE_SIZE)
            at = list(map(operator.add, map(operator.add, at, repeat(1)), heads))  # (past a second size byte)
            for i in [i for i, byte in enumerate(map(pack.__getitem__, map(operator.sub, at, repeat(1))))
                      if byte & 0x80]:
                byte, cursor = 0x80, at[i]  # (a size past 11 bits: its other bytes)
                while byte & 0x80 and cursor < end:
                    byte = pack[cursor]
                    cursor += 1
                at[i] = cursor
            inflater = zlib.decompressobj
            texts = []
            for start in at:
                try:
                    texts.append(inflater().decompress(pack[start:min(start + _TAG_LINE_INPUT, end)], line))
                except zlib.error:
                    texts.append(b"")
            hexes = [text[7:-1] for text in texts]
            good = [len(text) == line and text[:7] == b"object " and text[-1] == 10 for text in texts]
            if b"".join(hexes).translate(None, _LOWER_HEX):  # (some other than lower hex: each tested)
                good = [ok and not hex_id.translate(None, _LOWER_HEX) for ok, hex_id in zip(good, hexes)]
            found.update(compress(zip(tags, hexes), good))
        return found

    def close(self) -> None:
        packs, self._packs = self._packs, []
        for index, pack in packs:
            index.close()
            pack.close()


_TAG = 4
_WHOLE_OTHERS = frozenset((1, 2, 3))
"""Pack entry types of a commit, a tree and a blob stored whole."""
_KIND_OF_BYTE = bytes((byte >> 4) & 7 for byte in range(256))
"""A pack entry's first byte -> its type."""
_IS_WHOLE_OTHER = bytes(int(kind in _WHOLE_OTHERS) for kind in range(256))
_IS_TAG = bytes(int(kind == _TAG) for kind in range(256))
_MORE_SIZE = bytes(byte >> 7 for byte in range(256))
"""A size byte -> whether another follows it (1) or not (0)."""
_TAG_LINE_INPUT = 256
"""The compressed bytes of a tag entry inflated for its first line (some 60 in practice); a tag
whose first line takes more is read whole by the caller."""
_LOWER_HEX = b"0123456789abcdef"
