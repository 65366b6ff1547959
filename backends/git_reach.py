"""Which objects a set of tips reaches: pack bitmaps where they exist, a walk for the rest.

A pack bitmap (gitformat-pack(5), "bitmap-format") stores, for selected
commits of one pack, the set of objects reachable from that commit as an EWAH
compressed bitmap whose bit ``n`` is the ``n``-th object of the pack in offset
order.  The pack is closed under reachability (flag ``FULL_DAG``), so a
commit's bitmap never points outside the pack.

The reachable set is kept as two parts: a Python ``int`` used as a bitset over
the bitmapped pack (OR, AND-NOT and population are C loops over machine
words), and a ``set`` of hex names for objects that live elsewhere (loose
objects, other packs).  A walk fills in what bitmaps do not cover: commits and
tags first, so that every bitmap a walk can meet is OR-ed before any tree is
read, then trees, whose blobs are marked without being read.  A set bit is
always closed (everything below it is set or queued), which is what lets the
walk stop at it.
"""

from __future__ import annotations

import binascii
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dulwich.errors import ObjectFormatException
from dulwich.object_store import BaseObjectStore
from dulwich.objects import parse_tree

from backends.git_commitgraph import CommitGraph
from backends.git_deltachain import PREFIX_BLOCK, changed_ids, common_prefix
from backends.git_objects import LOWER_HEX, read_outside_packs
from backends.git_packindex import PackIndexView
from backends.interfaces import object_format_of

BITMAP_MAGIC = b"BITM"
BITMAP_VERSION = 1
BITMAP_OPT_FULL_DAG = 0x1
BITMAP_FIELDS = struct.Struct(">4sHHI")
"""A bitmap's header before the pack's checksum, which is ``view.raw_len`` bytes (32 for SHA-256)."""
EWAH_HEADER = struct.Struct(">II")
ENTRY_HEADER = struct.Struct(">IBB")
TYPE_BITMAPS = 4

COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
S_IFMT = 0o170000
S_IFDIR = 0o040000
S_IFGITLINK = 0o160000


LARGE_TREE_BYTES = 16 << 10
"""A tree this large (about 400 entries) is compared with the large trees its closure walked before:
only the entries where it differs from the most alike are looked at (see ``_Listing``)."""
KEPT_LISTINGS = 8
MEDIUM_TREE_BYTES = 2 << 10
"""A tree this large (about 50 entries) and below ``LARGE_TREE_BYTES`` is compared with the last tree
walked under the same entry name only: where it differs from it is parsed (``_Marking.by_name``)."""
KEPT_NAMES = 256
"""Entry names ``_Marking.by_name`` keeps a tree of (each under ``LARGE_TREE_BYTES``: 4 MiB at most)."""
KEPT_LISTING_BYTES = 64 << 20
"""Large trees a closure keeps to compare with: this many at most, holding no more bytes than this."""
SEEN_NAMES = 1 << 17
"""Hex names a walk keeps of the tree entries it has looked at (``_Marking.seen``; about 14 MiB
for SHA-1): past it they are forgotten all at once and looked up again as met."""

MAX_DECODED_BYTES = 8 << 20
"""Decoded commit bitsets one ``PackBitmap`` keeps (a pack of a million objects: 64 of them)."""

MAX_KEPT_CLOSURES = 32
MAX_KEPT_CLOSURE_BYTES = 4 << 20
"""Walked closures one ``PackBitmap`` keeps (``Walker.closure``): this many at most, holding no more
bytes than this (a bitset each, and about ``OTHER_BYTES`` for each name it keeps: an object outside
the pack, a tip or a boundary commit of its key)."""
KEEP_CLOSURE_STEPS = 256
"""A closure is kept when its walk took this many commits and trees or more (fewer cost less to walk
again than to keep)."""
CLOSURE_BYTES = 200
OTHER_BYTES = 160
"""A hex name kept in a set: the bytes object (73 bytes for SHA-1, 97 for SHA-256) and its slots."""


class BitmapError(Exception):
    """The ``.bitmap`` file is malformed or belongs to another pack."""


def decode_ewah(data: bytes, at: int, max_bits: int) -> tuple[int, int]:
    """Decode the EWAH bitmap at ``data[at:]`` to an int bitset; return it and where it ends."""
    if at + EWAH_HEADER.size > len(data):
        raise BitmapError("truncated EWAH header")
    bit_count, word_count = EWAH_HEADER.unpack_from(data, at)
    if bit_count > (max_bits + 63) // 64 * 64:
        raise BitmapError(f"EWAH bitmap of {bit_count} bits for a pack of {max_bits} objects")
    limit = (bit_count + 63) // 64 * 8
    p = at + EWAH_HEADER.size
    end = p + 8 * word_count
    if end + 4 > len(data):
        raise BitmapError("truncated EWAH words")
    out = bytearray()
    while p < end:
        rlw = int.from_bytes(data[p:p + 8], "big")
        p += 8
        run, literals = (rlw >> 1) & 0xFFFFFFFF, rlw >> 33
        if run:
            out += (b"\xff" if rlw & 1 else b"\x00") * (8 * run)
        if literals:
            if p + 8 * literals > end:
                raise BitmapError("EWAH literal words run past the bitmap")
            words = array("Q")
            words.frombytes(data[p:p + 8 * literals])
            words.byteswap()  # stored big-endian; we want little-endian bytes on any host
            out += words.tobytes() if sys.byteorder == "little" else _swap_back(words)
            p += 8 * literals
        if len(out) > limit:
            raise BitmapError("EWAH bitmap longer than its declared bit count")
    bits = int.from_bytes(out, "little") & ((1 << min(bit_count, max_bits)) - 1)
    return bits, end + 4


def _swap_back(words: array[int]) -> bytes:  # pragma: no cover - big-endian hosts only
    words.byteswap()
    return b"".join(w.to_bytes(8, "little") for w in words)


@dataclass(eq=False)
class PackBitmap:
    """The commit bitmaps of one pack, decoded lazily (with their XOR chains)."""

    view: PackIndexView
    data: bytes
    entries: list[tuple[int, int]]                    # (xor_offset, ewah start) by entry number
    by_commit: dict[bytes, int]                       # binary commit name -> entry number
    type_starts: tuple[int, ...] = ()
    """Where the type bitmaps of the pack's commits, trees, blobs and tags start."""
    _decoded: dict[int, int] = field(default_factory=dict, repr=False)
    _types: dict[int, int] = field(default_factory=dict, repr=False)
    _closures: dict[tuple[frozenset[bytes], frozenset[bytes]], tuple[int, frozenset[bytes]]] = field(
        default_factory=dict, repr=False)
    """Closures walked over this pack (``Walker.closure``), by their tips and shallow boundary."""

    def closure_budget(self, objects: int) -> int:
        """The bytes the closures kept over a pack of ``objects`` objects may take."""
        return min(MAX_KEPT_CLOSURE_BYTES, MAX_KEPT_CLOSURES * (objects // 8 + 1 + CLOSURE_BYTES))

    def kept_closure(self, key: tuple[frozenset[bytes], frozenset[bytes]]) -> tuple[int, frozenset[bytes]] | None:
        """The closure of the tips and boundary ``key`` a walk kept, as bits and names outside the pack."""
        return self._closures.get(key)

    def keep_closure(self, key: tuple[frozenset[bytes], frozenset[bytes]], bits: int, others: frozenset[bytes]) -> None:
        """Keep a walked closure for the next requests with the same tips and boundary (a shallow
        client's haves are its tips' whole trees, walked at every fetch: the same for every clone of
        the same tips).  Past the budget the ones kept are forgotten all at once, as the decoded
        bitsets are; requests in several threads may keep at once (a closure is the same whoever
        walked it)."""
        bitset = len(self.view) // 8 + 1 + CLOSURE_BYTES
        budget = self.closure_budget(len(self.view))

        def cost(key: tuple[frozenset[bytes], frozenset[bytes]], others: frozenset[bytes]) -> int:
            # (the key's names count: a fetch may name 262,144 haves, each set of them kept as a
            # key of some 30 MB, uncounted, 32 of them a bitmap)
            return bitset + OTHER_BYTES * (len(key[0]) + len(key[1]) + len(others))

        this = cost(key, others)
        if this > budget:
            return
        closures = self._closures
        if sum(cost(kept_key, kept[1]) for kept_key, kept in list(closures.items())) + this > budget:
            closures.clear()
        closures[key] = bits, others

    def of_type(self, type_num: int) -> int:
        """The bitset of the pack's objects of one type (COMMIT, TREE, BLOB or TAG)."""
        if type_num not in self._types:
            if not COMMIT <= type_num <= TAG or len(self.type_starts) != TYPE_BITMAPS:
                raise BitmapError(f"no type bitmap for type {type_num}")
            self._types[type_num] = decode_ewah(self.data, self.type_starts[type_num - 1], len(self.view))[0]
        return self._types[type_num]

    def bitmap(self, commit: bytes) -> int | None:
        """The reachability bitset of a binary commit name, or None if it has none."""
        number = self.by_commit.get(commit)
        return None if number is None else self._decode(number)

    def _decode(self, number: int) -> int:
        """The bitset of entry ``number``, through its XOR chain down to an entry decoded before.

        The decoded bitsets are kept (``MAX_DECODED_BYTES`` of them, then forgotten all at once):
        a bitmap is shared by the requests of every client (``git_fastpack``), whose haves are
        mostly the same few tips.  Requests in several threads may decode at once: each works
        from what it found and its own results (a clearing meanwhile costs only a decode)."""
        decoded = self._decoded
        chain = []
        bits = decoded.get(number)
        while bits is None:
            chain.append(number)
            xor_offset = self.entries[number][0]
            if not xor_offset:
                break
            number -= xor_offset
            bits = decoded.get(number)
        for n in reversed(chain):  # oldest first: each XOR base is decoded before it is needed
            xor_offset, at = self.entries[n]
            raw, _ = decode_ewah(self.data, at, len(self.view))
            if xor_offset:  # its base: the entry before in ``chain``, or the one found decoded
                assert bits is not None
                raw ^= bits
            bits = raw
            if len(decoded) >= max(1, MAX_DECODED_BYTES // (len(self.view) // 8 + 1)):
                decoded.clear()
            decoded[n] = bits
        assert bits is not None
        return bits


def read_pack_bitmap(path: str, view: PackIndexView) -> PackBitmap:
    """Parse the header and entry table of a pack ``.bitmap``; bitmaps decode on use."""
    with open(path, "rb") as f:
        data = f.read()
    header_size = BITMAP_FIELDS.size + view.raw_len
    if len(data) < header_size:
        raise BitmapError(f"{path}: truncated")
    magic, version, flags, count = BITMAP_FIELDS.unpack_from(data, 0)
    checksum = data[BITMAP_FIELDS.size:header_size]
    if magic != BITMAP_MAGIC or version != BITMAP_VERSION or not flags & BITMAP_OPT_FULL_DAG:
        raise BitmapError(f"{path}: not a version-1 full-DAG pack bitmap")
    if checksum != view.checksum:
        raise BitmapError(f"{path}: belongs to another pack")
    at = header_size
    type_starts = []
    for _ in range(TYPE_BITMAPS):  # commits, trees, blobs, tags
        type_starts.append(at)
        at = _skip_ewah(data, at)
    entries: list[tuple[int, int]] = []
    by_commit: dict[bytes, int] = {}
    for number in range(count):
        if at + ENTRY_HEADER.size > len(data):
            raise BitmapError(f"{path}: truncated entry table")
        idx_pos, xor_offset, _flags = ENTRY_HEADER.unpack_from(data, at)
        if idx_pos >= len(view) or xor_offset > number:
            raise BitmapError(f"{path}: entry {number} is out of range")
        start = at + ENTRY_HEADER.size
        entries.append((xor_offset, start))
        by_commit[view.name_at_index(idx_pos)] = number
        at = _skip_ewah(data, start)
    return PackBitmap(view=view, data=data, entries=entries, by_commit=by_commit, type_starts=tuple(type_starts))


def _skip_ewah(data: bytes, at: int) -> int:
    if at + EWAH_HEADER.size > len(data):
        raise BitmapError("truncated EWAH header")
    words: int = EWAH_HEADER.unpack_from(data, at)[1]
    end = at + EWAH_HEADER.size + 8 * words + 4
    if end > len(data):
        raise BitmapError("truncated EWAH bitmap")
    return end


@dataclass
class Reached:
    """Objects reachable from some tips: bits over the bitmapped pack, hex names elsewhere."""

    bits: int = 0
    others: set[bytes] = field(default_factory=set)
    listings: list[_Listing] = field(default_factory=list, repr=False)
    """The large trees its walk kept to compare with (for a walk that stops at this set)."""

    def contains(self, hexsha: bytes, view: PackIndexView | None) -> bool:
        pos = view.position(binascii.unhexlify(hexsha)) if view is not None else None
        if pos is not None:
            return bool(self.bits >> pos & 1)
        return hexsha in self.others


class _Listing:
    """A large tree a closure has walked (every entry marked or queued): its bytes and where each
    of its entries starts (and, last, where the tree ends)."""

    __slots__ = ("bounds", "raw")

    def __init__(self, raw: bytes, bounds: array[int]) -> None:
        self.raw = raw
        self.bounds = bounds


class _Marking:
    """A closure being walked: a byte array of bits over the bitmapped pack (a bit tested or set
    in place; on a Python int each test or set copies the whole set: a quarter of the counting of
    a fetch of 100 commits on the bench corpus), hex names elsewhere; and the large trees walked
    last (``_Listing``), most recent first."""

    __slots__ = ("by_name", "listings", "marks", "names", "others", "seen", "stop_listings", "stop_marks",
                 "stop_others")

    def __init__(self, size: int, stop: Reached | _Marking | None = None) -> None:
        """``stop``: the closure the walk does not enter: a whole one, or one being walked beside it
        (``Walker.closures``: its marks, its names outside the pack and its large trees, looked at
        as they grow)."""
        self.marks = bytearray((size + 7) // 8)
        self.others: set[bytes] = set()
        self.seen: set[bytes] = set()
        """Hex names of tree entries this walk has marked, queued or found in ``stop``: the next tree
        that names one skips it without a look-up in the pack index (a tree's blobs are mostly its
        siblings' and its parent commit's).  A cache of up to ``SEEN_NAMES``: the marks say."""
        self.listings: list[_Listing] = []
        self.names: dict[bytes, bytes] = {}
        """The entry name of each subtree queued (hex name: name): where ``by_name`` looks."""
        self.by_name: dict[bytes, _Listing] = {}
        """The last tree of ``MEDIUM_TREE_BYTES`` or more walked under each entry name (a root tree's
        is ``b""``): the next tree of that name, mostly the next commit's at the same path, is
        compared with it alone (``Walker._named_entries``)."""
        self.stop_marks: bytes | bytearray | None = None
        self.stop_others: set[bytes] = set()
        self.stop_listings: list[_Listing] = []
        """The large trees of ``stop`` (their entries all in it: skipping them is stopping at them)."""
        if isinstance(stop, _Marking):
            self.stop_marks = stop.marks
        elif stop is not None:
            self.stop_marks = stop.bits.to_bytes(len(self.marks), "little")
        if stop is not None:
            self.stop_others = stop.others
            self.stop_listings = stop.listings

    def keep(self, listing: _Listing) -> None:
        listings = self.listings
        listings.insert(0, listing)
        total = 0
        for n, kept in enumerate(listings):
            total += len(kept.raw)
            if n >= KEPT_LISTINGS or total > KEPT_LISTING_BYTES:
                del listings[n:]
                break


@dataclass(eq=False)
class _Walk:
    """A closure being walked (``Walker._start``): its marks, the commits and trees it has queued,
    and what decides whether it is kept (``Walker._finish``)."""

    reached: _Marking
    key: tuple[frozenset[bytes], frozenset[bytes]] | None
    """The tips and shallow boundary it is kept by, or None (a walk that stops at another)."""
    partial: bool
    """Whether what the store lacks is passed over (a client's haves), not raised."""
    commits: list[bytes] = field(default_factory=list)
    trees: list[bytes] = field(default_factory=list)
    owners: list[bytes] = field(default_factory=list)
    """The commit (or tag, or tree) that queued each of ``trees`` in the commits' walk."""
    tags: set[bytes] = field(default_factory=set)
    heads: list[bytes] = field(default_factory=list)
    shallow_only: bool = False
    steps: int = 0
    skipped: int = 0
    """Commits and trees passed over (missing from the store)."""


class MissingObject(Exception):
    """A tip or a reachable object is not in the object store."""


class WalkAbandoned(Exception):
    """A walk stopped because nobody waits for its answer any more (the client went away)."""


ABANDON_CHECK = 256
"""Commits or trees a walk takes between two looks at whether it is still wanted."""


def check_abandoned(abandoned: Callable[[], bool] | None) -> None:
    """Raise ``WalkAbandoned`` if ``abandoned`` (``PackPlan.abandoned``) says nobody waits any more."""
    if abandoned is not None and abandoned():
        raise WalkAbandoned("the client went away while its pack was being counted")


class Walker:
    """Computes ``Reached`` sets over one object store (and its bitmapped pack, if any)."""

    def __init__(self, store: BaseObjectStore, bitmap: PackBitmap | None,
                 read: Callable[[bytes], tuple[int, bytes]] | None = None,
                 boundary: frozenset[bytes] = frozenset(),
                 abandoned: Callable[[], bool] | None = None, graph: CommitGraph | None = None) -> None:
        """``boundary``: shallow commits, taken with their trees but never their parents.

        A commit's bitmap stands for its walk only when it holds no boundary commit: then the
        walk would never stop at one (a shallow client's old tags: their whole history is the
        client's), else the walk goes commit by commit.  A boundary commit outside the bitmapped
        pack is in no bitmap (a bitmap's closure lies in its pack)."""
        self._store = store
        self._boundary = boundary
        self._abandoned = abandoned
        """Asked every ``ABANDON_CHECK`` steps of a walk: True stops it with ``WalkAbandoned``
        (it only reads: nothing is left half done)."""
        self._read_raw = read if read is not None else self._store_read
        self._graph = graph
        """The store's commit-graph: a commit of the bitmapped pack it holds is not read (its tree and
        parents are the graph's)."""
        self._bitmap = bitmap
        self._view = bitmap.view if bitmap is not None else None
        self._raw_len = object_format_of(store).raw_len
        self._hex_len = 2 * self._raw_len
        self._boundary_bits = 0
        if self._view is not None:
            for commit in boundary:
                pos = self._view.position(binascii.unhexlify(commit))
                if pos is not None:
                    self._boundary_bits |= 1 << pos

    @property
    def view(self) -> PackIndexView | None:
        return self._view

    def closures(self, haves: Iterable[bytes], wants: Iterable[bytes]) -> tuple[Reached, Reached]:
        """The closure of a client's haves (``closure``, passing over what the store lacks of them:
        a branch reset and ``git repack -adb`` leave the old tip's loose commits, not the packed
        commits and trees below them, as git's walk of what the client has passes over what it
        cannot read) and what the ``wants`` reach outside it, in one walk.

        The commits of both are walked first (the haves', then the wants', which stop at them), then
        the trees of both in one order: each root tree by where its commit is stored in the
        bitmapped pack (``_stored_at``), the haves' first where both name one, each walked whole
        before the next (without a bitmapped pack, the haves' trees, then the wants').  A want's
        tree is mostly stored as a delta of a have's tree of a commit beside it (a hostile
        ``--deepen`` names 10,000 shallow commits and the commits beside them as haves): walked one
        after the other, the one's delta chain is resolved from the other's, in the reader's cache;
        the haves' trees walked first, 52,000 trees apart, resolved 53,825 tree entries twice.  A
        tree that a want's walk marked before a have's walk met it is walked by both: the haves'
        closure is whole, and the wants' set is taken less it (``plan_pack``), so what is sent is
        what the two walks one after the other give.
        A haves' closure kept by an earlier walk (``keep_closure``) is taken as it is."""
        have = self._start(haves, None, partial=True)
        if isinstance(have, Reached):
            return have, self.closure(wants, stop=have)
        want = self._start(wants, have.reached, partial=False)
        assert not isinstance(want, Reached)  # (a walk that stops at another is never kept)
        if self._view is None:
            self._walk_trees(have)
            self._walk_trees(want)
            return self._finish(have), self._finish(want)
        roots = [(self._stored_at(by, n), 0, sha) for n, (by, sha) in enumerate(zip(have.owners, have.trees, strict=True))]
        roots += [(self._stored_at(by, n), 1, sha) for n, (by, sha) in enumerate(zip(want.owners, want.trees, strict=True))]
        roots.sort()
        walks = (have, want)
        for _, side, sha in roots:
            walk = walks[side]
            walk.trees = [sha]
            self._walk_trees(walk)
        return self._finish(have), self._finish(want)

    def closure(self, tips: Iterable[bytes], stop: Reached | None = None) -> Reached:
        """Everything reachable from the hex names ``tips`` (which must exist).

        ``stop``: a closure of this walker's (the client's haves), whose objects the walk does not
        enter; the result then holds what the tips reach outside it (what they reach, less ``stop``,
        is the same): the trees the haves' walk read are not read again."""
        walk = self._start(tips, stop, partial=False)
        if isinstance(walk, Reached):
            return walk
        self._walk_trees(walk)
        return self._finish(walk)

    def _stored_at(self, sha: bytes, n: int) -> int:
        """Where the commit ``sha`` is in the bitmapped pack (git writes a pack's commits newest
        first, as its walk meets them), else after all of them, in the order its walk queued its
        tree (``n``).  (By where the trees themselves are stored, a delta family together, the trees of
        each walk came in another order than their commits: each compared with the last of its
        name, 2,500 of 40,000 differed too much and were parsed whole, and as many walked twice.)"""
        assert self._view is not None
        offset = self._view.offset_of(binascii.unhexlify(sha))
        return offset if offset is not None else (1 << 62) + n

    def _start(self, tips: Iterable[bytes], stop: Reached | _Marking | None, *, partial: bool) -> _Walk | Reached:
        """Walk the tips and the commits they reach (their trees queued, not walked); or the
        closure a walk of the same tips and boundary kept.  ``partial``: pass over what the store
        lacks (``closures``' haves)."""
        key = None
        if stop is None and self._bitmap is not None:  # (a walk that stops at another is that one's)
            tips = tuple(tips)
            boundary = self._boundary
            if tips and boundary.issuperset(tips):
                # every tip a boundary commit: its closure is its tree, whatever else the boundary
                # holds (a shallow clone's tips are its boundary; deepened by one, they are the haves
                # of a boundary that holds their parents too: the clone's walk, kept, is theirs)
                boundary = frozenset(tips)
            key = frozenset(tips), boundary
            kept = self._bitmap.kept_closure(key)
            if kept is not None:
                return Reached(kept[0], set(kept[1]))
        walk = _Walk(_Marking(len(self._view) if self._view is not None else 0, stop), key, partial)
        reached, commits = walk.reached, walk.commits
        tips = tuple(tips)
        # every tip's own bitmap first, then the walks from the tips without one, which stop where
        # those bitmaps cover them: a fetch's 16 haves, newest first, had the oldest walked first,
        # 732 commits down to a bitmapped one, all but a few of them in the next have's bitmap
        unmapped = []
        for sha in tips:
            self._step(walk)
            if self._mark(reached, sha, use_bitmap=True):
                unmapped.append(sha)
        tags = walk.tags  # (the tag objects read: a tip, or a tag's target)
        for sha in reversed(unmapped):
            self._step(walk)
            try:
                if self._expand_owned(walk, sha) == TAG:
                    tags.add(sha)
            except MissingObject:
                if not walk.partial:
                    raise
                walk.skipped += 1
        # whether every tip and commit the walk met is a boundary commit or a tag: a shallow clone's
        # wants, its branches and tags (then its closure is also that of its commits alone, less the
        # tags: the haves of its first --deepen, ``_keep_without_tags``), and the commits met
        heads = walk.heads
        heads.extend(sha for sha in tips if sha not in tags)
        shallow_only = key is not None and self._boundary.issuperset(heads)
        while commits:
            sha = commits.pop()
            self._step(walk)
            try:
                kind = self._expand_owned(walk, sha) if self._mark(reached, sha, use_bitmap=True) else None
            except MissingObject:  # (a have's parent or tree the repository lacks: passed over)
                if not walk.partial:
                    raise
                walk.skipped += 1
                kind = None
            if kind == TAG:
                tags.add(sha)
            elif shallow_only and sha not in tags:  # (a tag of a tag both wanted: read once)
                if sha in self._boundary:
                    heads.append(sha)
                else:  # (a commit below the boundary, or one a bitmap covered; a tag's tree or blob)
                    shallow_only = False
        walk.shallow_only = shallow_only
        return walk

    def _expand_owned(self, walk: _Walk, sha: bytes) -> int:
        """``_expand`` of ``sha`` in ``walk``, noting it as the owner of each tree it queues."""
        trees = walk.trees
        queued = len(trees)
        kind = self._expand(walk.reached, sha, walk.commits, trees)
        walk.owners.extend([sha] * (len(trees) - queued))
        return kind

    def _walk_trees(self, walk: _Walk) -> None:
        """Walk the trees ``walk`` has queued, and theirs, each subtree before the next queued."""
        trees, reached = walk.trees, walk.reached
        while trees:
            self._step(walk)
            sha = trees.pop()
            try:
                self._walk_tree(reached, sha, trees, reached.names.pop(sha, b""))
            except MissingObject:
                if not walk.partial:
                    raise
                walk.skipped += 1

    def _finish(self, walk: _Walk) -> Reached:
        """The closure ``walk`` walked; kept for the next walk of the same tips and boundary when it
        took long enough."""
        reached, key = walk.reached, walk.key
        bits = int.from_bytes(reached.marks, "little")
        if key is not None and walk.steps >= KEEP_CLOSURE_STEPS and not reached.listings and not walk.skipped:
            # (nor one that passed over missing objects: the same tips as wants must fail on them)
            # (a walk that kept large trees to compare with is not kept: the walk that stops at it
            # compares with them, which a kept closure could not give)
            assert self._bitmap is not None
            self._bitmap.keep_closure(key, bits, frozenset(reached.others))
            if walk.shallow_only and walk.tags and walk.heads:
                self._keep_without_tags(reached, frozenset(walk.heads), walk.tags)
        return Reached(bits, reached.others, reached.listings)

    def _step(self, walk: _Walk) -> None:
        walk.steps += 1
        if walk.steps % ABANDON_CHECK == 0:
            self.check_wanted()

    def _keep_without_tags(self, reached: _Marking, heads: frozenset[bytes], tags: set[bytes]) -> None:
        """Keep a walk of boundary commits and tags of them (``git clone --depth=1 --no-single-branch``:
        the branches and the tags, each commit a shallow one) also as the closure of its commits
        alone: the same objects but the tags, which nothing but a tag reaches.  That clone's first
        ``git fetch --deepen=1`` names those commits as its haves, each of them a boundary commit."""
        assert self._bitmap is not None
        marks = bytearray(reached.marks)
        others = set(reached.others)
        for tag in tags:
            pos = self._pos(tag)
            if pos is None:
                others.discard(tag)
            else:
                marks[pos >> 3] &= ~(1 << (pos & 7)) & 0xFF
        self._bitmap.keep_closure((heads, heads), int.from_bytes(marks, "little"), frozenset(others))

    def check_wanted(self) -> None:
        """Raise ``WalkAbandoned`` if nobody waits for the walk's answer any more (the walk looks
        every ``ABANDON_CHECK`` steps, and so does a pass over its result)."""
        check_abandoned(self._abandoned)

    def _pos(self, hexsha: bytes) -> int | None:
        if self._view is None:
            return None
        return self._view.position(binascii.unhexlify(hexsha))

    def _mark(self, reached: _Marking, sha: bytes, use_bitmap: bool = False) -> bool:
        """Mark ``sha``; True if it was new and its children still need a look."""
        pos = self._pos(sha)
        if pos is None:
            if sha in reached.others or sha in reached.stop_others:
                return False
            reached.others.add(sha)
            return True
        marks = reached.marks
        if marks[pos >> 3] >> (pos & 7) & 1:
            return False
        stop = reached.stop_marks
        if stop is not None and stop[pos >> 3] >> (pos & 7) & 1:
            return False
        if use_bitmap and self._bitmap is not None:
            bits = self._bitmap.bitmap(binascii.unhexlify(sha))
            if bits is not None and not bits & self._boundary_bits:
                marks[:] = (int.from_bytes(marks, "little") | bits).to_bytes(len(marks), "little")
                return False
        marks[pos >> 3] |= 1 << (pos & 7)
        return True

    def _store_read(self, sha: bytes) -> tuple[int, bytes]:
        return read_outside_packs(self._store, sha)

    def _read(self, sha: bytes) -> tuple[int, bytes]:
        try:
            return self._read_raw(sha)
        except KeyError as exc:
            raise MissingObject(sha.decode("ascii")) from exc

    def _expand(self, reached: _Marking, sha: bytes, commits: list[bytes], trees: list[bytes]) -> int:
        """Queue what ``sha`` links to; its type."""
        if self._graph is not None and self._pos(sha) is not None:
            found = self._graph.links(sha)
            if found is not None:
                trees.append(found[0])
                if sha not in self._boundary:
                    commits.extend(found[1])
                return COMMIT
        type_num, raw = self._read(sha)
        if type_num == COMMIT:
            tree, parents = _commit_links(raw, self._hex_len)
            trees.append(tree)
            if sha not in self._boundary:
                commits.extend(parents)
        elif type_num == TAG:
            commits.append(_tag_target(raw, self._hex_len))
        elif type_num == TREE:
            self._tree_children(raw, trees, reached)
        return type_num

    def _walk_tree(self, reached: _Marking, sha: bytes, trees: list[bytes], name: bytes) -> None:
        if not self._mark(reached, sha):
            return
        _, raw = self._read(sha)
        self._tree_children(raw, trees, reached, name)

    def _tree_children(self, raw: bytes, trees: list[bytes], reached: _Marking, name: bytes = b"") -> None:
        """Queue unseen subtrees, mark blobs (never read), skip gitlinks.

        Of a large tree, only the entries where it differs from a large tree walked before (its
        parent commit's at the same path, mostly): a one-file commit into a directory of 100,000
        files had each of its 100,000 entries looked up in the pack index, each fetch as many
        times as it had such commits to count (``_new_entries``).  Of a smaller one of
        ``MEDIUM_TREE_BYTES`` or more (``name``: its entry's name in the tree that queued it), only
        where it differs from the last one walked under that name (``_named_entries``): a
        ``--shallow-exclude`` of 8,000 commits whose root and one directory hold 150 files each
        parsed their 14,000 trees whole, 2 million entries (0.6 s of its 0.9 s counting)."""
        entries: Iterable[tuple[bytes, int, bytes]]
        if len(raw) >= LARGE_TREE_BYTES:
            entries = self._new_entries(raw, reached)
        elif len(raw) >= MEDIUM_TREE_BYTES:
            entries = self._named_entries(raw, reached, name)
        else:
            entries = parse_tree(raw, self._raw_len)
        names = reached.names
        if self._view is not None:
            # each name looked at once a walk: a Python step an entry looked each one up in the pack
            # index (10,000 haves' 20,000 trees: 4 million entries, most of them the same blobs)
            seen = reached.seen
            for entry_name, mode, child in entries:
                if child in seen:
                    continue
                kind = mode & S_IFMT
                if kind == S_IFDIR:
                    trees.append(child)
                    names[child] = entry_name
                elif kind == S_IFGITLINK:
                    continue
                else:
                    self._mark(reached, child)
                seen.add(child)
            if len(seen) > SEEN_NAMES:
                seen.clear()
            return
        seen, stop = reached.others, reached.stop_others  # no bitmapped pack: names in sets (hot loop)
        for entry_name, mode, child in entries:
            if child in seen or child in stop:
                continue
            kind = mode & S_IFMT
            if kind == S_IFDIR:
                trees.append(child)
                names[child] = entry_name
            elif kind != S_IFGITLINK:
                seen.add(child)


    def _named_entries(self, raw: bytes, reached: _Marking, name: bytes) -> list[tuple[bytes, int, bytes]]:
        """The entries of the tree ``raw`` (walked under the entry name ``name``) that are not those
        of the last tree walked under that name (or all of them, when it differs too much or there
        is none); ``raw`` is kept for the next one of that name."""
        raw_len = self._raw_len
        by_name = reached.by_name
        old = by_name.get(name)
        if old is not None:
            try:
                # (a quarter of its entries looked at one by one: another tree of that name, read whole)
                found = _differing_entries(raw, old, raw_len, max(8, len(old.bounds) // 4))
            except (ObjectFormatException, ValueError):
                found = None  # (parsed whole below, which says what is wrong with it)
            if found is not None:
                by_name[name] = found[1]
                return found[0]
        entries = list(parse_tree(raw, raw_len))
        ends = _entry_ends(entries, 0, raw_len)
        if ends is not None and (ends[-1] if ends else 0) == len(raw):
            if len(by_name) >= KEPT_NAMES and name not in by_name:
                by_name.clear()
            by_name[name] = _Listing(raw, array("q", [0]) + ends)
        return entries

    def _new_entries(self, raw: bytes, reached: _Marking) -> list[tuple[bytes, int, bytes]]:
        """The entries of the large tree ``raw`` that are not those of a large tree this closure
        walked before (or, if it differs from all of them too much, all of them); ``raw`` is kept
        to compare with.

        Of the trees walked before, the one that shares the longest prefix and suffix of bytes
        with ``raw`` is taken.  Both are read from an entry start in each: the bytes they share
        from there are the same entries up to the last entry start of the old tree within them
        (parsing is the same from the same bytes), all of them marked or queued by this closure.
        Then one entry of ``raw`` is parsed, and the old tree's entry where ``raw``'s next one
        sorts is sought (a binary search over its entry starts) to compare from again."""
        raw_len = self._raw_len
        best: tuple[int, _Listing] | None = None
        for listing in (*reached.listings, *reached.stop_listings):
            covered = common_prefix(raw, 0, listing.raw, 0) + _common_suffix(raw, listing.raw)
            if best is None or covered > best[0]:
                best = covered, listing
        if best is not None:
            try:
                found = _differing_entries(raw, best[1], raw_len)
            except (ObjectFormatException, ValueError):
                found = None  # (parsed whole below, which says what is wrong with it)
            if found is not None:
                reached.keep(found[1])
                return found[0]
        entries = list(parse_tree(raw, raw_len))  # (a list from the C parser, a generator from the Python one)
        ends = _entry_ends(entries, 0, raw_len)
        if ends is not None and (ends[-1] if ends else 0) == len(raw):
            reached.keep(_Listing(raw, array("q", [0]) + ends))
        return entries


def _differing_entries(raw: bytes, old: _Listing, raw_len: int,
                       limit: int | None = None) -> tuple[list[tuple[bytes, int, bytes]], _Listing] | None:
    """The entries of ``raw`` that ``old`` does not have at the same place, and ``raw``'s listing;
    None once more than ``limit`` entries (by default a 64th of ``old``'s, at least 64) are looked
    at one by one (too different)."""
    prior, bounds = old.raw, old.bounds
    if limit is None:
        limit = max(64, len(bounds) // 64)
    if len(raw) == len(prior):
        changed = _changed_ids(raw, old, raw_len, limit)
        if changed is not None:
            return None if len(changed) > limit else (changed, _Listing(raw, bounds))
    entries: list[tuple[bytes, int, bytes]] = []
    starts: list[array[int]] = []
    at, there, index = 0, 0, 0  # entry starts in raw and in prior; bounds[index] == there
    while at < len(raw):
        if there < len(prior):
            same = common_prefix(raw, at, prior, there)
            last = bisect_right(bounds, there + same) - 1
            if last > index:  # whole entries in common: the old tree's, shifted
                shift = at - there
                run = bounds[index:last]
                starts.append(run if not shift else array("q", [b + shift for b in run]))
                at, there, index = bounds[last] + shift, bounds[last], last
                continue
        start, end = at, raw.index(b"\0", at) + 1 + raw_len
        if end > len(raw):
            return None
        entries.extend(parse_tree(raw[start:end], raw_len))
        starts.append(array("q", [start]))
        at = end
        if len(entries) > limit:
            return None
        if at < len(raw):
            if index + 1 < len(bounds) and bounds[index + 1] - there == end - start \
                    and raw[start:end - raw_len] == prior[there:bounds[index + 1] - raw_len]:
                # (the entry's mode and name are the old one's, its id another: the next ones follow)
                index += 1
                there = bounds[index]
                continue
            key = _sort_key(raw, at)
            index = bisect_left(range(len(bounds) - 1), key, index, len(bounds) - 1,
                                key=lambda n: _sort_key(prior, bounds[n]))
            there = bounds[index]
    listing = array("q")
    for run in starts:
        listing += run
    listing.append(len(raw))
    return entries, _Listing(raw, listing)


def _changed_ids(raw: bytes, old: _Listing, raw_len: int, limit: int) -> list[tuple[bytes, int, bytes]] | None:
    """The entries of ``raw`` whose ids are not those of ``old``'s entries at the same place, when
    the two trees differ only in ids (``changed_ids``: then ``old``'s entry starts are ``raw``'s);
    None when some byte differs outside an id.  (A tree of 150 files, six of them changed: 12 us,
    where the entry-by-entry comparison took 35.)  More than ``limit``: the first ``limit + 1``."""
    bounds = old.bounds
    changed = changed_ids(raw, old.raw, bounds, raw_len, limit)
    if changed is None:
        return None
    entries: list[tuple[bytes, int, bytes]] = []
    for index in changed:
        entries.extend(parse_tree(raw[bounds[index]:bounds[index + 1]], raw_len))
    return entries


def entries_not_in(raw: bytes, old: bytes, raw_len: int) -> list[tuple[bytes, int, bytes]] | None:
    """The entries of the tree ``raw`` that are not, byte for byte, whole entries of the tree
    ``old`` (``_differing_entries``); None when ``old`` is malformed, has a mode written otherwise
    than git writes it (its entries' starts are not known then), or the trees differ too much.

    Whole entries of both only: bytes of ``raw`` found inside ``old`` across its entries' bounds
    (a name holding ``40000 x``, an id's bytes) are not an entry ``old`` holds."""
    try:
        entries = list(parse_tree(old, raw_len))  # (a list from the C parser, a generator from the Python one)
        ends = _entry_ends(entries, 0, raw_len)
        if ends is None or (ends[-1] if ends else 0) != len(old):
            return None
        found = _differing_entries(raw, _Listing(old, array("q", [0]) + ends), raw_len)
    except (ObjectFormatException, ValueError):
        return None
    return None if found is None else found[0]


def _sort_key(raw: bytes, at: int) -> bytes:
    """The name of the tree entry at ``raw[at:]`` as trees are sorted: a subtree's with a ``/``."""
    space = raw.index(b" ", at)
    name = raw[space + 1:raw.index(b"\0", space)]
    return name + b"/" if raw[at:space].lstrip(b"0") == b"40000" else name


def _entry_ends(entries: list[tuple[bytes, int, bytes]], start: int, raw_len: int) -> array[int] | None:
    """Where each of ``entries`` ends, parsed from ``start``, if their modes were written as git
    writes them (octal, no leading zero: ``40000``, ``100644``); None for a mode of 0."""
    ends = array("q", bytes(8 * len(entries)))
    at = start
    for n, (name, mode, _child) in enumerate(entries):
        if not mode:
            return None
        at += (mode.bit_length() + 2) // 3 + len(name) + 2 + raw_len
        ends[n] = at
    return ends


def _common_suffix(a: bytes, b: bytes) -> int:
    """How many last bytes ``a`` and ``b`` share."""
    la, lb = len(a), len(b)
    size = min(la, lb)
    lo, block = 0, PREFIX_BLOCK
    while lo < size:
        hi = min(size, lo + block)
        x, y = a[la - hi:la - lo], b[lb - hi:lb - lo]
        if x != y:  # (the last differing byte: where their XOR, read little-endian, starts)
            return hi - -((int.from_bytes(x, "little") ^ int.from_bytes(y, "little")).bit_length() // -8)
        lo, block = hi, block * 2
    return size


def _commit_links(raw: bytes, hex_len: int = 40) -> tuple[bytes, list[bytes]]:
    """A commit's tree and parents (hex names of ``hex_len`` digits: 40 SHA-1, 64 SHA-256)."""
    tree = b""
    parents: list[bytes] = []
    tree_end, parent_end = 5 + hex_len, 7 + hex_len
    for line in raw.split(b"\n"):
        if not line:
            break
        if line.startswith(b"tree "):
            tree = line[5:tree_end]
        elif line.startswith(b"parent "):
            parents.append(line[7:parent_end])
    if len(tree) != hex_len:
        raise MissingObject("a commit without a tree")
    return tree, parents


def tag_object(raw: bytes, hex_len: int = 40) -> bytes | None:
    """The id on a tag's first line (``object <hex>``), in lower case; None if that line is not so.
    git reads the id in either case (another tool may write capitals; ``git fsck`` passes them)."""
    end = 7 + hex_len
    if raw[:7] != b"object " or raw[end:end + 1] != b"\n":
        return None
    target = raw[7:end]
    if LOWER_HEX.fullmatch(target):
        return target
    target = target.lower()
    return target if LOWER_HEX.fullmatch(target) else None


def _tag_target(raw: bytes, hex_len: int = 40) -> bytes:
    """The id a tag's first line names, in lower case as git reads it (``tag_object``)."""
    if not raw.startswith(b"object "):
        raise MissingObject("a tag without an object line")
    return raw[7:7 + hex_len].lower()
