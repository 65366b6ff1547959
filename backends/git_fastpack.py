"""Pack generation at I/O speed: send stored pack entries as they are.

The generic path (``backends/git_pack.py``) inflates every object to find what
to send and rebuilds each pack entry.  When the repository is on disk this
module does what git's own upload-pack does instead:

1. **Counting** (``backends/git_reach.py``): reachability of wants and haves
   from the bitmap where one exists (a pack's, or a multi-pack index's), a walk
   of commits and trees for the rest; the objects to send are ``reach(wants) - reach(haves)``, exactly.
2. **Verbatim reuse**: each object to send is taken from the first pack that
   holds it (the bitmapped pack first; under a multi-pack index bitmap, each
   object from the pack the index chose, its packs first in the bitmap's order:
   ``backends/git_midx.py``) and its stored entry is copied byte for
   byte: compressed data and deltas untouched.  Runs of consecutive unchanged
   entries go out as single slices of the memory-mapped pack.  Only the delta
   base reference of an entry may be rewritten:

   * OFS_DELTA whose base is sent from the same pack: the relative offset is
     recomputed for the new layout (unchanged bytes when nothing between them
     was skipped); without the ``ofs-delta`` capability it becomes REF_DELTA;
   * a delta whose base is sent from an earlier pack, or that the client has
     and ``thin-pack`` was asked: REF_DELTA naming the base;
   * otherwise (base neither sent nor usable), a delta made without resolving
     any text (``_ChainDeltas``, ``backends/git_deltachain.py``): against the
     first ancestor of its stored chain that one of the rules above allows, the
     chain's deltas composed; or, when the chain ends at a whole object that is
     not sent, against an object sent earlier from this pack whose chain ends
     there too (its copies of that object reused).  A tree goes against the
     same base, but its delta is made from the two trees' entries, read whole
     (``git_deltachain.tree_pieces``).  A shallow fetch of many
     branch tips is where this happens: their versions' stored bases are the
     versions between them.  Failing both (or a delta over half the object's
     size), the object is resolved and sent whole, zlib-compressed.  Objects
     outside packs (loose, alternates) are always sent whole.

   A delta's base is always sent from the same or an earlier pack in the
   fixed pack order (or whole), and a made delta's from earlier in its own pack,
   so the sent deltas cannot form a cycle.
3. **Streaming**: the header's object count is known after counting; the
   entries follow in chunks of ``chunk_size`` bytes and the trailing checksum
   (SHA-1, or SHA-256 in a SHA-256 repository) is computed over what was sent.
   Memory is the indexes, the bitsets and one
   chunk, never the pack.

``generate_pack_fast`` returns None when it cannot serve the request and the
caller must use the generic path (see its docstring).  The switch for the
session layer is ``with_fast_path(git_pack.generate_pack)``: same signature,
lazy (all work in the first ``next()``, i.e. in the worker pool), and it
falls back to the wrapped generator for filtered (partial clone) or in-memory
cases.
"""

from __future__ import annotations

import binascii
import collections
import dataclasses
import itertools
import mmap
import operator
import os
import weakref
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from dulwich.object_store import BaseObjectStore, DiskObjectStore
from dulwich.objects import ObjectID

from backends.git_commitgraph import store_commit_graph
from backends.git_deltachain import (
    DeltaError,
    Pieces,
    compose,
    encode_delta,
    parse_delta,
    rebase,
    tree_pieces,
)
from backends.git_midx import MidxError, MidxLayout, midx_bitmap_present, midx_layout
from backends.git_objects import (
    MAX_PEEL,
    CorruptPack,
    PackMaps,
    PackObjectReader,
    entry_size,
    pack_dirs,
    release_pages,
)
from backends.git_packindex import PackIndexView, UnsupportedIndex, pack_views
from backends.git_reach import (
    ABANDON_CHECK,
    BLOB,
    COMMIT,
    MAX_DECODED_BYTES,
    TAG,
    TREE,
    TYPE_BITMAPS,
    BitmapError,
    MissingObject,
    PackBitmap,
    Reached,
    Walker,
    read_pack_bitmap,
)
from backends.interfaces import SHA1_FORMAT, ObjectFormat, object_format_of
from backends.lru import LruCache

PACK_SIGNATURE = b"PACK"
PACK_VERSION = 2
OFS_DELTA = 6
REF_DELTA = 7
SHA_LEN = 20
"""A SHA-1 name's bytes; a SHA-256 repository's packs hold 32 (``PackIndexView.raw_len``)."""
# 64 KiB like git_pack's chunks: a side-band-framed chunk stays below glibc's mmap threshold
# (128 KiB); with 256 KiB chunks a server's RSS settled near 140 MB over sequential clones
# of the corpus, with 64 KiB near 78 MB, at 0.1 s more CPU per clone (more pool hops).
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_ENTRY_HEADER = 32            # type/size varint (<= 10 bytes) + OFS offset (<= 10); a REF name is read apart
TAGS_PREFIX = b"refs/tags/"
RELEASE_WINDOW = 8 << 20         # how far behind the cursor pages are dropped from our mapping

Progress = Callable[[bytes], None]


class _CannotServe(Exception):
    """This request or repository needs the generic path."""


@dataclass(eq=False)
class _Source:
    """One pack with the positions (pack order) of the objects it contributes."""

    view: PackIndexView
    positions: array[int] = field(default_factory=lambda: array("q"))
    selected: bytearray = field(default_factory=bytearray)

    def select(self, positions: Iterable[int]) -> None:
        self.positions = array("q", positions)
        # (C-level passes: a clone of a million objects took a Python step for each)
        if len(self.positions) == len(self.view):  # (sorted, each once: every object of the pack)
            self.selected = bytearray(b"\x01") * len(self.view)
            return
        self.selected = bytearray(len(self.view))
        collections.deque(map(self.selected.__setitem__, self.positions, itertools.repeat(1)), maxlen=0)


@dataclass(eq=False)
class PackPlan:
    """What to send and where each piece is stored; the writer's whole input."""

    sources: list[_Source]
    whole: list[bytes]                     # hex names sent resolved (not in any pack)
    have: Reached
    have_view: PackIndexView | None
    thin_pack: bool
    ofs_delta: bool
    store: DiskObjectStore
    reader: PackObjectReader | None = None
    """The counting's reader (over the writer's maps), whose cache holds the trees it walked: the
    writer reads what it sends whole, and the trees it makes deltas of, through it; closed with the pack."""

    @property
    def count(self) -> int:
        return sum(len(s.positions) for s in self.sources) + len(self.whole)

    def source_of(self, binsha: bytes) -> int | None:
        """Index of the source an object is sent from; len(sources) when sent whole; None if not sent."""
        for i, source in enumerate(self.sources):
            pos = source.view.position(binsha)
            if pos is not None and source.selected[pos]:
                return i
        hexsha = binascii.hexlify(binsha)
        return len(self.sources) if hexsha in self._whole_set else None

    def base_usable(self, binsha: bytes, index: int, *, same_pack_ok: bool) -> bool:
        """Can an entry of source ``index`` stay a delta against ``binsha``?

        Yes if the base is sent from an earlier source or whole (so delta
        chains only ever point to earlier sources: no cycle), from the same
        source when allowed (a pack's own deltas are acyclic), or if the
        client has it and asked for a thin pack.
        """
        where = self.source_of(binsha)
        if where is not None and (where < index or where == len(self.sources)
                                  or (same_pack_ok and where == index)):
            return True
        return self.client_has(binsha)

    def client_has(self, binsha: bytes) -> bool:
        return self.thin_pack and self.have.contains(binascii.hexlify(binsha), self.have_view)

    def base_usable_at(self, view: PackIndexView, pos: int, index: int, *, same_pack_ok: bool) -> bool:
        """``base_usable`` of the object at ``pos`` of ``view`` (a stored delta's base, found by its
        offset): a source or the haves over that view answer by the position itself, the object's
        name read only for the others (a shallow fetch's writer weighed 7,000 bases, each looked up
        by name in the index, twice, after its name was read from pack order)."""
        name = None
        where = None
        for i, source in enumerate(self.sources):
            if source.view is view:
                found: int | None = pos
            else:
                if name is None:
                    name = view.names[pos]
                found = source.view.position(name)
            if found is not None and source.selected[found]:
                where = i
                break
        if where is None and self.whole:
            if name is None:
                name = view.names[pos]
            if binascii.hexlify(name) in self._whole_set:
                where = len(self.sources)
        if where is not None and (where < index or where == len(self.sources) or (same_pack_ok and where == index)):
            return True
        if not self.thin_pack:
            return False
        if self.have_view is view:
            bits = self.have.bits
            kept: tuple[int, bytes] | None = self.__dict__.get("_have_marks")
            if kept is None or kept[0] is not bits:  # (a byte a look-up, not a shift of the whole set)
                kept = self.__dict__["_have_marks"] = bits, bits.to_bytes((bits.bit_length() + 7) // 8, "little")
            marks = kept[1]
            return (pos >> 3) < len(marks) and bool(marks[pos >> 3] >> (pos & 7) & 1)
        if name is None:
            name = view.names[pos]
        return self.have.contains(binascii.hexlify(name), self.have_view)

    @property
    def _whole_set(self) -> frozenset[bytes]:
        cached: frozenset[bytes] | None = self.__dict__.get("_whole_cache")
        if cached is None:
            cached = frozenset(self.whole)
            self.__dict__["_whole_cache"] = cached
        return cached


@dataclass(frozen=True, slots=True)
class Omit:
    """What a partial-clone filter leaves out, as far as this module serves filters: whole types
    (``blob:none``: blobs; ``tree:0``: trees and blobs) and blobs from a size up (``blob:limit=``).

    git's upload-pack answers these from its bitmaps too; a filter of another kind (``tree:<depth>``
    past 0, ``object:type=``, ``sparse:``) and a want that is not a commit (or a tag of one) are
    the generic path's, whose rules for named objects this module does not repeat.
    """

    types: frozenset[int] = frozenset()
    blobs_from: int | None = None
    """Blobs of this size or larger are left out (git: "at least" the limit goes)."""


def omission(blob_limit: int | None, tree_depth: int | None, object_types: object) -> Omit | None:
    """The ``Omit`` of a partial-clone filter (``backends.git_pack.PackPlan``'s fields), or None when
    this module does not serve that filter."""
    if object_types is not None or tree_depth not in (None, 0):
        return None
    types = {TREE, BLOB} if tree_depth == 0 else set()
    blobs_from = None
    if blob_limit is not None:
        if blob_limit <= 0:  # blob:none (-1) and blob:limit=0 leave every blob out
            types.add(BLOB)
        elif BLOB not in types:
            blobs_from = blob_limit
    return Omit(frozenset(types), blobs_from)


def generate_pack_fast(
    store: BaseObjectStore,
    wants: Sequence[bytes],
    haves: Sequence[bytes],
    *,
    thin_pack: bool = False,
    ofs_delta: bool = True,
    include_tag: bool = False,
    refs: Mapping[Any, bytes] | None = None,
    shallow_boundary: Collection[bytes] = (),
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    omit: Omit | None = None,
    use_bitmaps: bool = True,
    abandoned: Callable[[], bool] | None = None,
    peeled: Mapping[Any, bytes] | None = None,
) -> Iterator[bytes] | None:
    """The pack for ``wants`` minus ``haves`` (hex names) as byte chunks, or None.

    Counting happens in this call; the returned iterator streams the pack
    (header, entries, trailing SHA-1).  Unknown haves are ignored, as
    upload-pack does.  ``refs`` (name -> id) is where include-tag looks for
    annotated tags.  ``shallow_boundary`` (shallow clients, deepen requests)
    names commits that are sent or known without their parents: the walks of
    wants and haves both stop there, and bitmaps (which cover whole
    histories) are not used.  ``omit``: what a partial-clone filter leaves out.
    ``use_bitmaps``: ``pack.useBitmaps``; False counts by walking, as git then does.
    ``abandoned``: asked while counting; True stops it (``WalkAbandoned``: the client went away).
    ``peeled``: what the advertisement peeled ``refs``' annotated tags to (``plan_pack``).
    Returns None, having sent nothing, when the
    generic path must serve the request: an object store that is not on disk
    (memory repositories), no wants, an unknown want, an object missing from
    the store, a pack index this module cannot read, or a filter with a want
    that is not a commit or a tag of one.
    """
    if not wants or not isinstance(store, DiskObjectStore):
        return None
    maps = PackMaps()  # one map of each pack for the counting, the writing and the objects sent whole
    plan: PackPlan | None = None
    try:
        plan = plan_pack(store, wants, haves, thin_pack=thin_pack, ofs_delta=ofs_delta,
                         tag_refs=refs if include_tag else None, shallow_boundary=shallow_boundary, omit=omit,
                         maps=maps, use_bitmaps=use_bitmaps, abandoned=abandoned, peeled=peeled)
        _open_maps(plan, maps)
        maps.drop_pages()
    except BaseException as exc:
        if plan is not None and plan.reader is not None:
            plan.reader.close()
        maps.close()
        if isinstance(exc, (_CannotServe, UnsupportedIndex, MissingObject, BitmapError, OSError)):
            return None
        raise
    if progress is not None:
        progress(b"Enumerating objects: %d, done.\n" % plan.count)
    return write_pack(plan, maps, chunk_size=chunk_size, progress=progress)


class ShallowInfo(Protocol):
    @property
    def boundary(self) -> AbstractSet[bytes]: ...
    @property
    def extra_wants(self) -> Sequence[bytes]: ...


class PlanLike(Protocol):
    """The fields of ``backends.git_pack.PackPlan`` this module reads (structurally typed).

    ``filtered`` (a partial-clone filter) and its fields (``blob_limit``, ``tree_depth``,
    ``object_types``) are read with ``getattr``: a filter ``omission`` does not serve sends the
    request to the generic path; so is ``use_bitmaps`` (``pack.useBitmaps``; True without it).
    """

    @property
    def wants(self) -> Sequence[bytes]: ...
    @property
    def common(self) -> Sequence[bytes]: ...
    @property
    def known(self) -> Sequence[bytes]: ...
    @property
    def shallow(self) -> ShallowInfo: ...
    @property
    def thin(self) -> bool: ...
    @property
    def ofs_delta(self) -> bool: ...
    @property
    def include_tag(self) -> bool: ...


GenericPack = Callable[[BaseObjectStore, Any, Any, Any], Iterator[bytes]]


def pack_from_plan(store: BaseObjectStore, plan: PlanLike, refs: Mapping[Any, bytes],
                   progress: Progress | None = None, peeled: Mapping[Any, bytes] | None = None
                   ) -> Iterator[bytes] | None:
    """``generate_pack_fast`` for the generic path's ``PackPlan``; None when the generic path must serve."""
    omit = None
    if getattr(plan, "filtered", False):
        omit = omission(getattr(plan, "blob_limit", None), getattr(plan, "tree_depth", None),
                        getattr(plan, "object_types", None))
        if omit is None:
            return None
    wants = [*plan.wants, *plan.shallow.extra_wants]
    return generate_pack_fast(store, wants, list(plan.known), thin_pack=plan.thin,
                              ofs_delta=plan.ofs_delta, include_tag=plan.include_tag, refs=refs,
                              shallow_boundary=plan.shallow.boundary, progress=progress, omit=omit,
                              use_bitmaps=getattr(plan, "use_bitmaps", True),
                              abandoned=getattr(plan, "abandoned", None), peeled=peeled)


def serve_pack(store: BaseObjectStore, plan: PlanLike, refs: Mapping[Any, bytes],
               progress: Progress | None = None, *, generic: GenericPack,
               peeled: Mapping[Any, bytes] | None = None) -> Iterator[bytes]:
    """The fast path if it can serve ``plan``, else ``generic(store, plan, refs, progress)``.
    ``peeled``: the advertisement's peeled tags of ``refs`` (``plan_pack``).

    A generator: nothing (not even counting) runs before the first ``next()``,
    so the caller's worker pool does all the work, as with the generic path.
    """
    chunks = pack_from_plan(store, plan, refs, progress, peeled)
    if chunks is None:
        chunks = generic(store, plan, refs, progress)
    try:
        yield from chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def with_fast_path(generic: GenericPack) -> GenericPack:
    """Wrap ``git_pack.generate_pack`` so that it tries the fast path first (same signature)."""

    def generate_pack(store: BaseObjectStore, plan: Any, refs: Any, progress: Any = None) -> Iterator[bytes]:
        return serve_pack(store, plan, refs, progress, generic=generic)

    generate_pack.__doc__ = generic.__doc__
    return generate_pack


# -- counting --------------------------------------------------------------------------


def plan_pack(store: DiskObjectStore, wants: Sequence[bytes], haves: Sequence[bytes], *,
              thin_pack: bool, ofs_delta: bool, tag_refs: Mapping[Any, bytes] | None = None,
              shallow_boundary: Collection[bytes] = (), omit: Omit | None = None,
              maps: PackMaps | None = None, use_bitmaps: bool = True,
              abandoned: Callable[[], bool] | None = None, peeled: Mapping[Any, bytes] | None = None) -> PackPlan:
    """Count the objects to send and choose where each is read from.

    With ``omit`` (a partial clone): the objects it names are taken out of what the wants reach,
    as git's upload-pack does with its bitmaps: by the bitmap's type bitsets in the bitmapped pack,
    by each object's pack entry headers elsewhere; include-tag adds its tags after that, as git's
    pack-objects does (a tag whose object the filter left out is not sent).
    ``maps``: where the packs are read (the writer's, so that a pack is mapped once).
    ``use_bitmaps``: False (``pack.useBitmaps=false``) walks, as git's pack-objects then does.
    ``peeled``: what the advertisement peeled ``tag_refs``' annotated tags to (every other ref of
    it is no annotated tag); with it include-tag reads only the tags of objects being sent.
    """
    views = _pack_views(store)
    # each loose want looked up once: a client may name one a million times (17 s of lookups)
    if any(ObjectID(w) not in store for w in set(_not_in_packs(views, wants))):
        raise _CannotServe("unknown want")
    if set(wants) <= set(haves):  # a fetch with nothing new (a shallow client's --depth): no walk at all
        return PackPlan(sources=[], whole=[], have=Reached(), have_view=None, thin_pack=thin_pack,
                        ofs_delta=ofs_delta, store=store)
    # (with a shallow boundary, only bitmaps that hold none of it count)
    found = _find_bitmap(store, views) if use_bitmaps else None
    bitmap = found.bitmap if found is not None else None
    bitmapped = bitmap.view if bitmap is not None else None
    covered = found.packs if found is not None else []
    if covered:  # the bitmapped packs come first, in their bits' order: their objects are bits
        views = covered + [v for v in views if v not in covered]
        if haves or shallow_boundary:  # (a fetch names the bases of deltas it sends: see make_names_order)
            for view in covered:
                view.make_names_order()
    reader = PackObjectReader(store, views, maps)
    try:
        graph = (store_commit_graph(store, os.fspath(store.path), object_format_of(store).raw_len)
                 if bitmap is not None else None)
        walker = Walker(store, bitmap, reader.read, boundary=frozenset(shallow_boundary), abandoned=abandoned,
                        graph=graph)
        try:
            provided = _wanted_blobs(wants, reader, object_format_of(store).hex_len) if omit is not None else []
            blobs = frozenset(provided)
            wanted = [w for w in wants if w not in blobs]
            if haves:
                # one walk of both: the wants' stops at what the haves reach (a fetch of one commit into
                # a tree of 100,000 files read each tree since the bitmap twice, and walked it twice)
                # (a have outside the packs is looked for in the store: dulwich's ``in store`` for each,
                # which searches every pack's index and stats the multi-pack index, cost 0.1 s for 10,000)
                outside = set(_not_in_packs(views, haves))
                have, want = walker.closures([h for h in haves if h not in outside or ObjectID(h) in store], wanted)
                have.listings = []
            else:
                # (without haves the wants' walk stops at nothing and is kept for the next request of the
                # same tips and boundary: a shallow clone's, which its first --deepen=1 walks as its haves)
                have, want = Reached(), walker.closure(wanted)
            for blob in provided:  # a blob reaches nothing: marked, not read (a checkout asks for thousands)
                _add(want, blob, walker.view)
            send = Reached(want.bits & ~have.bits, want.others - have.others)
            if omit is not None:
                provided = [blob for blob in provided if send.contains(blob, walker.view)]
                _leave_out(send, omit, bitmap, reader, walker.check_wanted)
                for blob in provided:
                    _add(send, blob, walker.view)
            if tag_refs is not None:  # after the filter: a tag of an object it left out stays out
                _add_tags(tag_refs, store, reader, walker, send, have, peeled)
        except (CorruptPack, KeyError) as exc:
            raise _CannotServe(str(exc)) from exc
        sources = [_Source(v) for v in views]
        if found is not None:
            assert bitmapped is not None
            positions = _bit_positions(send.bits, len(bitmapped))
            runs = found.midx.split(positions) if found.midx is not None else [positions]
            for source, run in zip(sources[:len(covered)], runs, strict=True):
                if run:
                    source.select(run)
        whole = _place_others(store, sources[len(covered):], send.others, walker.check_wanted)
    except BaseException:
        reader.close()
        raise
    # The writer reads through the counting's reader (its cache holds the trees the walk read) only
    # where trees may go as deltas against bases the pack does not send: a shallow pack, or one
    # above the client's haves.  A full clone's cache (up to BASE_CACHE_BYTES) was otherwise held
    # for nothing while the pack streamed to the client, for as long as the client took.
    kept = maps is not None and bool(haves or shallow_boundary)
    if not kept:  # (a reader with maps of its own, or a full clone's: not kept past the counting)
        reader.close()
    return PackPlan(sources=[s for s in sources if s.positions], whole=whole, have=have,
                    have_view=bitmapped, thin_pack=thin_pack, ofs_delta=ofs_delta, store=store,
                    reader=reader if kept else None)


def _wanted_blobs(wants: Sequence[bytes], reader: PackObjectReader, hex_len: int) -> list[bytes]:
    """The blobs among the wants of a filtered request, which are sent whatever the filter (git's
    "provided objects": a partial clone's checkout asks for the blobs it lacks this way).

    The other wants must be commits or tags of commits (clones and fetches): a wanted tree, or a
    tag of a tree or a blob, is left to the generic path, which keeps git's rules for what such a
    want exempts from the filter."""
    blobs = []
    for want in wants:
        peeled = _peel(reader, want, hex_len)
        if peeled is not None and peeled[0] == BLOB and not peeled[2]:
            blobs.append(want)
        elif peeled is None or peeled[0] != COMMIT:
            raise _CannotServe("a filtered request wants a tree or a tag of one, or a tag of a blob")
    return blobs


def _peel(reader: PackObjectReader, sha: bytes, hex_len: int) -> tuple[int, bytes, list[bytes]] | None:
    """What ``sha`` names through tags (of tags): its type, its id and the tags passed on the way;
    None for a chain longer than ``MAX_PEEL``.  Types from the entries' headers: only tags are read."""
    tag_end = 7 + hex_len
    chain: list[bytes] = []
    target = sha
    for _ in range(MAX_PEEL + 1):  # (the tags and what the last one names)
        kind = reader.type_of(target)
        if kind != TAG:
            return kind, target, chain
        chain.append(target)
        target = reader.read(target)[1][7:tag_end].lower()  # (git reads capital hex too)
    return None


def _leave_out(send: Reached, omit: Omit, bitmap: PackBitmap | None, reader: PackObjectReader,
               check: Callable[[], None] | None = None) -> None:
    """Take what ``omit`` names out of ``send`` (in place).  ``check``: called every
    ``ABANDON_CHECK`` objects whose header is read (it raises once the pack is not wanted)."""
    looked = 0
    if bitmap is not None:
        for type_num in omit.types:
            send.bits &= ~bitmap.of_type(type_num)
        if omit.blobs_from is not None and send.bits:
            view, size = bitmap.view, len(bitmap.view)
            large = []
            for pos in _bit_positions(send.bits & bitmap.of_type(BLOB), size):
                looked += 1
                if check is not None and not looked % ABANDON_CHECK:
                    check()
                if reader.size_of(binascii.hexlify(view.names[pos])) >= omit.blobs_from:
                    large.append(pos)
            if large:
                cleared = bytearray(send.bits.to_bytes((size + 7) // 8, "little"))
                for pos in large:
                    cleared[pos >> 3] &= ~(1 << (pos & 7))
                send.bits = int.from_bytes(cleared, "little")
    kept = set()
    for hexsha in send.others:
        looked += 1
        if check is not None and not looked % ABANDON_CHECK:
            check()
        kind = reader.type_of(hexsha)
        if kind in omit.types or (kind == BLOB and omit.blobs_from is not None
                                  and reader.size_of(hexsha) >= omit.blobs_from):
            continue
        kept.add(hexsha)
    send.others = kept


def _not_in_packs(views: Sequence[PackIndexView], shas: Iterable[bytes]) -> list[bytes]:
    """The hex ``shas`` none of ``views`` holds (loose objects, or unknown): a dict lookup per pack
    each, where dulwich's ``in store`` searches every pack's index and stats a loose file (half of a
    clone's server time for 20,000 refs: one want each)."""
    return [sha for sha in shas
            if not any(view.contains(binascii.unhexlify(sha)) for view in views)]


def _pack_views(store: DiskObjectStore) -> list[PackIndexView]:
    """The packs, oldest first: an object in several takes its first copy.

    A pushed thin pack is completed with whole copies of its delta bases (as
    git's ``index-pack --fix-thin`` does), so after many pushes most objects
    are in two packs: as a delta in the pack of the push that brought them,
    whole in the next one.  Taking the oldest copy keeps the delta (its base
    comes from an earlier pack, which the order allows); taking copies in
    pack-name order sent a clone after 40 one-line pushes to a 100 KB file
    as 984 KiB instead of git's 56.

    Then the packs of the stores it borrows from (a fork's ``objects/info/alternates``), each
    directory's oldest first: their entries are reused as the repository's own are, and a bitmap
    there counts the borrowed history (as git's upload-pack uses an alternate's bitmap); a clone of
    a fork of the corpus had every borrowed object resolved and compressed again: 14 s against
    ``git daemon``'s 1.
    """
    raw_len = object_format_of(store).raw_len
    return [view for directory in pack_dirs(store)
            for view in sorted(pack_views(directory, raw_len), key=_age)]


def _age(view: PackIndexView) -> tuple[int, str]:
    try:
        return os.stat(view.pack_path).st_mtime_ns, view.pack_path
    except OSError:  # removed by a repack meanwhile: its readers fail and the request retries generically
        return 0, view.pack_path


MAX_KEPT_BITMAPS_BYTES = 64 << 20
"""Bitmap files kept read, with the bitsets decoded from them, over all repositories (each counts
its file's size and the most its decoded bitsets may take: all of them, or ``MAX_DECODED_BYTES``,
its four type bitsets and the walked closures it may keep, ``PackBitmap.closure_budget``)."""


class _KeptBitmap(NamedTuple):
    """A bitmap as kept between requests: without its pack's index view, which the views' own cache
    keeps within its bounds (a view takes about 36 bytes an object; held here too, an evicted one
    would stay)."""

    stamp: tuple[int, int, int]
    checksum: bytes
    objects: int
    bitmap: PackBitmap

    def for_view(self, view: PackIndexView) -> PackBitmap:
        """The bitmap over ``view`` (the same index: the bits are its positions), sharing the
        decoded bitsets."""
        return dataclasses.replace(self.bitmap, view=view)


_NO_VIEW = PackIndexView(pack_path="", pack_size=0, checksum=b"", names=(), offsets=array("q"),
                         idx_to_pos=array("l"), _pos_of={})
"""What a kept bitmap's ``view`` is until a request gives it its own."""


def _bitmap_cost(kept: _KeptBitmap) -> int:
    bitset = kept.objects // 8 + 1
    return (len(kept.bitmap.data) + min(MAX_DECODED_BYTES, len(kept.bitmap.entries) * bitset)
            + TYPE_BITMAPS * bitset + kept.bitmap.closure_budget(kept.objects))


_BITMAPS: LruCache[str, _KeptBitmap] = LruCache(MAX_KEPT_BITMAPS_BYTES, _bitmap_cost)


def forget_bitmaps(match: Callable[[object], bool]) -> int:
    """Let go of the kept bitmaps of the files whose paths ``match`` (a repository found gone)."""
    return _BITMAPS.drop_where(match)


@dataclass(frozen=True, eq=False)
class _Found:
    """A bitmap to count from and the packs whose objects are its bits, in their bits' order: one
    pack for a pack's own bitmap; for a multi-pack index's (``midx``), each pack it takes objects
    from (a pack whose every object it takes from another has no bits)."""

    bitmap: PackBitmap
    packs: list[PackIndexView]
    midx: MidxLayout | None = None


def counts_from_bitmap(store: BaseObjectStore) -> bool:
    """Whether git's upload-pack would count a request of ``store`` from a bitmap (a pack's or a
    multi-pack index's that can be read), which changes what some filters send (``tree:0``: the
    trees and blobs the wants name through tags, and nothing else)."""
    if not isinstance(store, DiskObjectStore):
        return False
    try:
        return _find_bitmap(store, _pack_views(store)) is not None
    except (UnsupportedIndex, BitmapError, OSError):
        return False


def bitmap_covers(store: BaseObjectStore, oids: Iterable[bytes]) -> set[bytes]:
    """Of the hex ``oids``, those among the objects of the bitmap ``counts_from_bitmap`` finds (its
    pack's, or its multi-pack index's): git's bitmap walk finds the others (loose, or in another
    pack) by walking, and its filters judge them as without a bitmap."""
    if not isinstance(store, DiskObjectStore):
        return set()
    try:
        found = _find_bitmap(store, _pack_views(store))
    except (UnsupportedIndex, BitmapError, OSError):
        return set()
    if found is None:
        return set()
    view = found.midx.view if found.midx is not None else found.packs[0]
    covered: set[bytes] = set()
    for oid in oids:
        try:
            if view.contains(binascii.unhexlify(oid)):
                covered.add(oid)
        except (binascii.Error, ValueError):
            continue
    return covered


def pack_bitmap(store: BaseObjectStore) -> PackBitmap | None:
    """The bitmap ``counts_from_bitmap`` finds (kept between requests, ``_find_bitmap``), or None:
    what a commit with a bitmap reaches, for a walk that only asks which commits are reached."""
    if not isinstance(store, DiskObjectStore):
        return None
    try:
        found = _find_bitmap(store, _pack_views(store))
    except (UnsupportedIndex, BitmapError, OSError):
        return None
    return found.bitmap if found is not None else None


def _find_bitmap(store: DiskObjectStore, views: list[PackIndexView]) -> _Found | None:
    """The bitmap git's upload-pack would count from: a multi-pack index's (the repository's own,
    then those of the stores it borrows from), else the first of ``views`` with a readable one.

    Each is read once per version of its file (size, mtime, inode: git writes a new file) and
    kept with the bitsets decoded from it for the next requests: a fetch's haves decoded some
    twenty bitmaps (6 ms of its 28 on the bench corpus), the same ones at every fetch.  A
    multi-pack index that does not match its packs, or whose bitmap is missing or damaged, is
    passed over (it only costs speed)."""
    by_path = {view.pack_path: view for view in views}
    raw_len = object_format_of(store).raw_len
    for directory in dict.fromkeys(os.path.dirname(view.pack_path) for view in views):
        if not midx_bitmap_present(directory):
            continue  # (an index without its bitmap is not read at all)
        try:
            layout = midx_layout(directory, raw_len, by_path.get)
        except (MidxError, OSError):
            continue
        if layout is None:
            continue
        bitmap = _kept_bitmap(layout.bitmap_path(), layout.view)
        if bitmap is not None:
            return _Found(bitmap, [by_path[path] for path in layout.packs], layout)
    for view in views:
        bitmap = _kept_bitmap(view.pack_path[:-5] + ".bitmap", view)
        if bitmap is not None:
            return _Found(bitmap, [view])
    return None


def _kept_bitmap(path: str, view: PackIndexView) -> PackBitmap | None:
    """The bitmap at ``path`` over ``view`` (a pack's, or a multi-pack index's pseudo-pack), as
    kept in ``_BITMAPS`` or read now; None when there is none or it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    kept = _BITMAPS.get(path)
    if kept is not None and kept.stamp == stamp and kept.checksum == view.checksum:
        return kept.for_view(view)
    try:
        bitmap = read_pack_bitmap(path, view)
    except (BitmapError, OSError):
        return None  # a stale or damaged bitmap only costs speed
    _BITMAPS.put(path, _KeptBitmap(stamp, view.checksum, len(view), dataclasses.replace(bitmap, view=_NO_VIEW)))
    return bitmap


_BIT_FLAGS = bytes.maketrans(b"01", b"\x00\x01")


def _bit_positions(bits: int, size: int) -> array[int]:
    """Set bit numbers of ``bits`` below ``size``, ascending: its binary digits, lowest first, made
    flags over the positions, all in C-level passes (a Python step for each byte of the bitset
    and a generator for its bits took 0.1 s for a clone of a million objects)."""
    if bits <= 0:
        return array("q")
    flags = format(bits, "b").encode("ascii")[::-1][:size].translate(_BIT_FLAGS)
    return array("q", itertools.compress(range(len(flags)), flags))


def _place_others(store: DiskObjectStore, sources: list[_Source], others: Iterable[bytes],
                  check: Callable[[], None] | None = None) -> list[bytes]:
    """Assign objects outside the bitmapped pack to the first pack holding them; the rest go whole.
    ``check``: called every ``ABANDON_CHECK`` objects (a shallow clone's, every object of it: 0.09 s
    for 80,000); it raises once the pack is not wanted."""
    found: list[list[int]] = [[] for _ in sources]
    whole: list[bytes] = []
    for count, hexsha in enumerate(sorted(others), 1):
        if check is not None and not count % ABANDON_CHECK:
            check()
        binsha = binascii.unhexlify(hexsha)
        for i, source in enumerate(sources):
            pos = source.view.position(binsha)
            if pos is not None:
                found[i].append(pos)
                break
        else:
            if ObjectID(hexsha) not in store:
                raise MissingObject(hexsha.decode("ascii"))
            whole.append(hexsha)
    for source, positions in zip(sources, found):
        if positions:
            source.select(sorted(positions))
    return whole


def _add_tags(refs: Mapping[Any, bytes], store: DiskObjectStore, reader: PackObjectReader, walker: Walker,
              send: Reached, have: Reached, targets: Mapping[Any, bytes] | None = None) -> None:
    """include-tag: annotated tags (and tags of tags) that point at an object being sent; the
    walker is asked every ``ABANDON_CHECK`` refs whether the pack is still wanted (a mirror's
    100,000 tags, each peeled).  With ``targets`` (the advertisement's peeled tags), a tag whose object is not
    sent costs a dict lookup: only the others are read (each tag of 100,000 sorted, looked up in the
    store and peeled took 1.7 s for a fetch of 10 commits)."""
    view = walker.view
    hex_len = object_format_of(store).hex_len
    tags: Iterable[tuple[Any, bytes]] = refs.items()
    if targets is not None:
        tags = _tags_of_sent(refs, targets, walker, send)
    for count, (ref, sha) in enumerate(sorted(tags), 1):
        if not count % ABANDON_CHECK:
            walker.check_wanted()
        if not ref.startswith(TAGS_PREFIX) or send.contains(sha, view) or have.contains(sha, view):
            continue  # not a tag ref, or a tag already sent / known (a clone wants every tag)
        if ObjectID(sha) not in store:
            continue
        peeled = _peel(reader, sha, hex_len)
        if peeled is None:
            continue  # an absurdly long chain: leave it to the client to ask
        _kind, target, chain = peeled
        if chain and send.contains(target, view):
            for tag in chain:
                if not send.contains(tag, view) and not have.contains(tag, view):
                    _add(send, tag, view)


def _tags_of_sent(refs: Mapping[Any, bytes], peeled: Mapping[Any, bytes], walker: Walker,
                  send: Reached) -> list[tuple[Any, bytes]]:
    """The tag refs among ``refs`` that ``peeled`` says are annotated tags of an object ``send``
    holds: each target looked up once, then the refs of those found picked out by a C-level pass
    (a mirror's 100,000 tags took a dict lookup, a prefix test and a lookup in ``refs`` each, a
    third of a fetch's CPU)."""
    view = walker.view
    there = set()
    for count, target in enumerate(set(peeled.values()), 1):
        if not count % ABANDON_CHECK:
            walker.check_wanted()
        if send.contains(target, view):
            there.add(target)
    if not there:
        return []
    return [(ref, refs[ref]) for ref, target in peeled.items()
            if target in there and ref.startswith(TAGS_PREFIX) and ref in refs]


def _add(reached: Reached, hexsha: bytes, view: PackIndexView | None) -> None:
    pos = view.position(binascii.unhexlify(hexsha)) if view is not None else None
    if pos is None:
        reached.others.add(hexsha)
    else:
        reached.bits |= 1 << pos


def _open_maps(plan: PackPlan, maps: PackMaps | None = None) -> PackMaps:
    """Map every source pack now (in ``maps``, where the counting may have mapped some), so that a
    concurrent repack cannot pull it away."""
    opened = maps if maps is not None else PackMaps()
    try:
        for source in plan.sources:
            mapped = opened.get(source.view.pack_path)
            if len(mapped) != source.view.pack_size or mapped[-source.view.raw_len:] != source.view.checksum:
                raise _CannotServe(f"{source.view.pack_path} does not match its index")
    except BaseException:
        if maps is None:
            opened.close()
        raise
    return opened


# -- writing ---------------------------------------------------------------------------


def encode_entry_header(type_num: int, size: int) -> bytes:
    """The type-and-size varint that starts every pack entry."""
    first = (type_num << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(first | 0x80)
        first = size & 0x7F
        size >>= 7
    out.append(first)
    return bytes(out)


def encode_ofs(distance: int) -> bytes:
    """OFS_DELTA's base distance: big-endian 7-bit groups, each but the last biased by one."""
    out = bytearray([distance & 0x7F])
    distance >>= 7
    while distance:
        distance -= 1
        out.append(0x80 | (distance & 0x7F))
        distance >>= 7
    out.reverse()
    return bytes(out)


@dataclass(frozen=True, slots=True)
class _Entry:
    """The parsed start of a stored entry."""

    type_num: int
    size_header: bytes      # the type-and-size varint as stored
    data_start: int         # where the zlib stream starts
    base_offset: int        # OFS_DELTA: absolute offset of the base in the same pack
    base_name: bytes        # REF_DELTA: binary base name


def parse_entry(mapped: mmap.mmap, offset: int, raw_len: int = SHA_LEN) -> _Entry:
    """The stored entry at ``offset`` of a pack whose names are ``raw_len`` bytes."""
    head = mapped[offset:offset + MAX_ENTRY_HEADER]
    byte = head[0]
    type_num = (byte >> 4) & 7
    p = 1
    while byte & 0x80:
        byte = head[p]
        p += 1
    size_header = head[:p]
    if type_num == OFS_DELTA:
        byte = head[p]
        p += 1
        distance = byte & 0x7F
        while byte & 0x80:
            byte = head[p]
            p += 1
            distance = ((distance + 1) << 7) | (byte & 0x7F)
        return _Entry(type_num, size_header, offset + p, offset - distance, b"")
    if type_num == REF_DELTA:
        at = offset + p
        return _Entry(type_num, size_header, at + raw_len, 0, mapped[at:at + raw_len])
    return _Entry(type_num, size_header, offset + p, 0, b"")


def _as_ref_delta(size_header: bytes) -> bytes:
    return bytes([(size_header[0] & 0x8F) | (REF_DELTA << 4)]) + size_header[1:]


class _Output:
    """Accumulates pack bytes, hashes them and hands out chunks of at most ``chunk_size``."""

    def __init__(self, chunk_size: int, object_format: ObjectFormat = SHA1_FORMAT) -> None:
        self.chunk_size = chunk_size
        self.offset = 0
        self._buffer = bytearray()
        self._sha = object_format.hasher()

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data
        self.offset += len(data)

    def room(self) -> int:
        """Bytes that still fit in the current chunk (at least one)."""
        return max(self.chunk_size - len(self._buffer), 1)

    def ready(self) -> bool:
        return len(self._buffer) >= self.chunk_size

    def take(self) -> Iterator[bytes]:
        """Hand out what is buffered, in pieces of at most ``chunk_size``.

        An entry written in one go (sent whole, rebased, composed) can be far
        larger than a chunk; it goes out sliced, so the transport never gets
        one write the size of an object (its backpressure is built around the chunk)."""
        buffer = self._buffer
        self._buffer = bytearray()
        self._sha.update(buffer)
        return self._pieces(buffer)

    def finish(self) -> Iterator[bytes]:
        buffer = self._buffer
        self._buffer = bytearray()
        self._sha.update(buffer)
        buffer += self._sha.digest()
        return self._pieces(buffer)

    def _pieces(self, buffer: bytearray) -> Iterator[bytes]:
        size = self.chunk_size
        if len(buffer) <= size:
            yield bytes(buffer)
            return
        with memoryview(buffer) as view:  # slices of the buffer, never a copy of all of it
            for start in range(0, len(buffer), size):
                yield view[start:start + size].tobytes()


@dataclass
class WriteStats:
    """How each entry went out (for progress and the micro-benchmark)."""

    verbatim: int = 0
    rebased: int = 0          # OFS distance recomputed, turned into REF_DELTA, or composed
    whole: int = 0
    composed: int = 0         # of the rebased: a delta made from the stored chain or a sibling's (_ChainDeltas)


def write_pack(plan: PackPlan, maps: PackMaps, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
               progress: Progress | None = None, stats: WriteStats | None = None) -> Iterator[bytes]:
    """Stream the planned pack from ``maps`` (``_open_maps``); closes them when done or closed early."""
    stats = stats if stats is not None else WriteStats()
    out = _Output(chunk_size, object_format_of(plan.store))
    resolver = _Resolver(plan.store, maps, plan.reader)
    try:
        out.write(PACK_SIGNATURE + PACK_VERSION.to_bytes(4, "big") + plan.count.to_bytes(4, "big"))
        for index, source in enumerate(plan.sources):
            mapped = maps.get(source.view.pack_path)
            yield from _write_source(plan, index, source, mapped, out, stats, resolver)
        for hexsha in plan.whole:
            if (streamed := _loose_stream(plan.store, hexsha)) is not None:
                yield from _write_streamed(*streamed, out)
            else:
                _write_whole(resolver, hexsha, out)
            stats.whole += 1
            if out.ready():
                yield from out.take()
        yield from out.finish()
        if progress is not None:
            progress(b"Total %d (reused %d, rebased %d, composed %d, whole %d)\n"
                     % (plan.count, stats.verbatim, stats.rebased - stats.composed, stats.composed, stats.whole))
    finally:
        resolver.close()
        plan.reader = None
        maps.close()


def _write_source(plan: PackPlan, index: int, source: _Source, mapped: mmap.mmap, out: _Output,
                  stats: WriteStats, resolver: _Resolver) -> Iterator[bytes]:
    """Entries of one pack in pack order; consecutive unchanged entries are copied as one run.

    Within a span of entries copied back to back, every entry keeps its
    distance to any earlier entry of the span, so an OFS_DELTA whose base lies
    in the span is unchanged; that test needs no lookup and covers almost
    every entry of a clone.  Everything else goes through ``_rewritten_header``.
    """
    view = source.view
    offsets = view.offsets
    last = len(offsets) - 1
    pack_end = view.pack_size - view.raw_len
    new_offset = _NewOffsets(source.positions, offsets)
    record = new_offset.append
    chunk_size = out.chunk_size
    chains = _ChainDeltas(view, resolver)
    run_start = run_end = -1        # bytes of the pending verbatim run
    span_start = -1                 # where the current back-to-back span began (-1: none)
    done = 0
    if len(source.positions) == len(offsets):  # every entry of the pack (a clone): see _plain_entries
        for done, verbatim_end in _plain_entries(mapped, offsets, pack_end, plan.ofs_delta):
            if run_start < 0:
                new_offset.shift = out.offset - offsets[0]
                run_start = span_start = offsets[0]
            run_end = verbatim_end
            if run_end - run_start >= chunk_size:  # keep streaming: never hold a long run back
                yield from _copy(mapped, run_start, run_end, out)
                run_start = run_end
        new_offset.plain = done
        stats.verbatim += done
    for pos in source.positions[done:] if done else source.positions:
        start = offsets[pos]
        end = offsets[pos + 1] if pos < last else pack_end
        record(out.offset + (run_end - run_start))
        if start == run_end and _keeps_distance(mapped, start, span_start, plan.ofs_delta):
            stats.verbatim += 1
            run_end = end
        elif (header := _rewritten_header(plan, index, source, mapped, pos, new_offset)) is None:
            stats.verbatim += 1
            if start != run_end:
                yield from _copy(mapped, run_start, run_end, out)
                run_start = span_start = start
            run_end = end
        else:
            yield from _copy(mapped, run_start, run_end, out)
            run_start = run_end = span_start = -1
            if isinstance(header, tuple):
                out.write(header[0])
                stats.rebased += 1
                yield from _copy(mapped, header[1], end, out)
            elif (entry := chains.entry(plan, index, source, mapped, pos, new_offset)) is not None:
                out.write(entry)
                stats.rebased += 1
                stats.composed += 1
            else:
                _write_whole(resolver, binascii.hexlify(view.names[pos]), out)
                stats.whole += 1
            if out.ready():
                yield from out.take()
            continue
        if run_end - run_start >= chunk_size:  # keep streaming: never hold a long run back
            yield from _copy(mapped, run_start, run_end, out)
            run_start = run_end
    yield from _copy(mapped, run_start, run_end, out)


PLAIN_BLOCK = 4096
PLAIN_BLOCK_BYTES = 256 << 10
"""Entries of a pack sent whole whose types ``_plain_entries`` reads at once: this many at most,
starting within this many bytes of the first (each read maps a page ahead of the copy)."""
_ENTRY_KINDS = bytes((byte >> 4) & 7 for byte in range(256))


def _plain_entries(mapped: mmap.mmap, offsets: array[int], pack_end: int, ofs_delta: bool
                   ) -> Iterator[tuple[int, int]]:
    """For a pack every entry of which is sent, in its order: how many of its first entries go out
    as stored, and where they end, growing a block (``PLAIN_BLOCK``) at a time.

    From the first entry, a whole object, on, as long as each entry is a whole object or (for a
    client that takes them) an OFS_DELTA, the pack is one back-to-back span: each entry keeps its
    distance to its base, which lies before it in the pack, as ``_write_source`` would find entry
    by entry (``_keeps_distance``).  Each block's types are read from its entries' first bytes by
    C-level maps, with no step an entry (a clone of a million tiny objects took 0.25 s of them); the
    first entry of any other kind (a REF_DELTA, an OFS_DELTA for a client without ofs-delta) ends
    it, and ``_write_source`` goes on from there entry by entry."""
    plain = b"\x01\x02\x03\x04\x06" if ofs_delta else b"\x01\x02\x03\x04"
    count = len(offsets)
    done = 0
    while done < count:
        block = offsets[done:max(done + 1, min(done + PLAIN_BLOCK,
                                               bisect_left(offsets, offsets[done] + PLAIN_BLOCK_BYTES, done)))]
        heads = operator.itemgetter(*block)(mapped) if len(block) > 1 else (mapped[block[0]],)
        kinds = bytes(heads).translate(_ENTRY_KINDS)
        if done == 0 and kinds[:1] == b"\x06":
            return  # (an OFS_DELTA first has no base before it: entry by entry, as stored packs never have it)
        odd = kinds.translate(None, plain)
        take = min(kinds.find(bytes([kind])) for kind in set(odd)) if odd else len(block)
        if take:
            done += take
            yield done, int(offsets[done]) if done < count else pack_end
        if take < len(block):
            return


def _keeps_distance(mapped: mmap.mmap, start: int, span_start: int, ofs_delta: bool) -> bool:
    """A whole object, or an OFS_DELTA whose base is in the current back-to-back span."""
    byte = mapped[start]
    kind = (byte >> 4) & 7
    if kind != OFS_DELTA:
        return 0 < kind < OFS_DELTA and kind != 5
    if not ofs_delta or span_start < 0:
        return False
    p = start + 1
    while byte & 0x80:
        byte = mapped[p]
        p += 1
    byte = mapped[p]
    distance = byte & 0x7F
    while byte & 0x80:
        p += 1
        byte = mapped[p]
        distance = ((distance + 1) << 7) | (byte & 0x7F)
    return start - distance >= span_start


class _NewOffsets:
    """Output offsets of the entries written so far from one source, looked up by pack position."""

    def __init__(self, positions: array[int], stored: array[int] | None = None) -> None:
        """``stored``: the pack's offsets, for ``plain``."""
        self._positions = positions
        self._offsets: array[int] = array("q")
        self.append = self._offsets.append
        self._stored = stored
        self.plain = 0
        """The first ``plain`` positions (of a pack sent whole, ``_plain_entries``: the pack's first
        entries) went out as one run: their new offsets are their stored ones plus ``shift``, not
        recorded one by one."""
        self.shift = 0

    def __getitem__(self, pos: int) -> int:
        at = bisect_left(self._positions, pos)
        if at < self.plain:
            assert self._stored is not None
            return self._stored[pos] + self.shift
        return self._offsets[at - self.plain]


def _copy(mapped: mmap.mmap, start: int, end: int, out: _Output) -> Iterator[bytes]:
    """Copy ``mapped[start:end]``, yielding whenever a chunk is full."""
    while start < end:
        step = min(end - start, out.room())
        out.write(mapped[start:start + step])
        start += step
        if out.ready():
            release_pages(mapped, start, RELEASE_WINDOW)
            yield from out.take()


_WHOLE = object()


def _rewritten_header(plan: PackPlan, index: int, source: _Source, mapped: mmap.mmap, pos: int,
                      new_offset: _NewOffsets) -> tuple[bytes, int] | object | None:
    """None: copy the entry as stored.  (header, data_start): new header, stored data.  _WHOLE: resolve."""
    start = int(source.view.offsets[pos])
    entry = parse_entry(mapped, start, source.view.raw_len)
    if entry.type_num == OFS_DELTA:
        return _ofs_header(plan, index, source, entry, pos, start, new_offset)
    if entry.type_num == REF_DELTA:
        if plan.base_usable(entry.base_name, index, same_pack_ok=True):
            return None
        return _WHOLE
    return None


def _ofs_header(plan: PackPlan, index: int, source: _Source, entry: _Entry, pos: int, start: int,
                new_offset: _NewOffsets) -> tuple[bytes, int] | object | None:
    base_pos = source.view.position_at_offset(entry.base_offset)
    if base_pos is None:
        return _WHOLE  # a corrupt stored offset: let the object store resolve it
    if source.selected[base_pos]:
        if not plan.ofs_delta:
            return (_as_ref_delta(entry.size_header) + source.view.names[base_pos], entry.data_start)
        distance = new_offset[pos] - new_offset[base_pos]
        if distance == start - entry.base_offset:
            return None
        return (entry.size_header + encode_ofs(distance), entry.data_start)
    if plan.base_usable_at(source.view, base_pos, index, same_pack_ok=False):
        return (_as_ref_delta(entry.size_header) + source.view.names[base_pos], entry.data_start)
    return _WHOLE


MAX_CHAIN_WALK = 64
"""Stored delta links followed from an object whose base is not sent, looking for one that is."""
MAX_COMPOSED_PIECES = 1 << 14
"""Pieces (copies and inserts) of a composed delta past which the object goes whole."""
MAX_SIBLINGS = 16
"""Objects sent before, of the same stored family, weighed as the base of one whose chain has none sent."""
MAX_SIBLINGS_TRIED = 3
"""Of those, the nearest (their chains meet this one's soonest, then the latest sent) tried as bases."""
MAX_SIBLING_BASE = 16 << 20
"""A family's whole object (inflated to fill what the sibling lacks) larger than this: sent whole."""
_UNREAD_LINK, _WHOLE_LINK, _LOST_LINK = -3, -1, -2
"""``_ChainDeltas._link``: a header not read yet, a whole object, a base not in the pack."""
_PACK_LINKS: weakref.WeakKeyDictionary[PackIndexView, array[int]] = weakref.WeakKeyDictionary()
"""``_ChainDeltas._link``'s answers by pack view, kept while the view is: a pack's entries never
change, and each shallow fetch read again the headers of every entry it sent on a chain (a
``--shallow-exclude`` of 8,000 commits: 37,000 headers, 0.05 s of its 0.5 s, for two siblings)."""
CHAIN_CACHE_BYTES = 16 << 20
"""Parsed deltas and composed pieces kept while one pack's entries are written (estimated bytes)."""
ROOT_CACHE_BYTES = 4 << 20
"""Whole texts of chain families' roots kept while one pack's entries are written (``_sibling_entry``)."""


class _ChainDeltas:
    """Deltas against an ancestor of an object's stored delta chain, for the objects whose own base
    is neither sent nor the client's (a shallow fetch of many branches: the stored base of a tip's
    blob is often an older version, itself a delta against another branch's tip).

    The chain is followed through the pack's headers to the first ancestor that is sent earlier in
    this pack (OFS_DELTA, or REF_DELTA without ``ofs-delta``), from an earlier pack or whole, or that
    the client has in a thin pack (REF_DELTA); the stored deltas on the way are composed
    (``backends.git_deltachain``) without resolving any text.  An ancestor sent from this pack is
    at a lower offset (OFS_DELTA bases are), so it is written before the delta and the sent deltas
    stay acyclic.  The chain's deltas are parsed once and the pieces composed for each link are
    kept (bounded): the objects of one directory share most of their chains.  A chain that ends
    at a whole object not sent is tried against a sibling (``_sibling_entry``).  A tree is read
    whole instead, with the base chosen (``_tree_pieces``): the counting has just read it.
    """

    def __init__(self, view: PackIndexView, resolver: _Resolver | None = None) -> None:
        self._view = view
        self._resolver = resolver
        """Reads trees whole (``_tree_entry``); None: every object's chain is composed."""
        self._kinds = bytearray()
        """The type of each entry's stored family (its chain's whole object), by position: 0 not
        known yet (``_kind``)."""
        self._parsed: LruCache[int, Pieces] = LruCache(CHAIN_CACHE_BYTES, _pieces_cost)
        self._composed: LruCache[tuple[int, int], Pieces] = LruCache(CHAIN_CACHE_BYTES, _pieces_cost)
        self._families: dict[int, list[int]] | None = None
        self._roots: LruCache[int, bytes] = LruCache(ROOT_CACHE_BYTES, len)
        """The whole texts of families' roots that siblings were rebased on: the objects of a family
        come near each other in the pack, and each inflated the root again (352 of the corpus's 996)."""
        self._links: array[int] | None = None
        """Each entry's stored base (its position; ``_WHOLE_LINK``, ``_LOST_LINK``), read from its
        header the first time a walk reaches it (4 bytes an entry of the pack, shared by the
        requests that use the view: ``_PACK_LINKS``): the objects of one family walk the same
        chain, and each step was a header parsed and an offset looked up."""
        self._usable = bytearray()
        """Whether a base outside this pack's sent entries is usable (``PackPlan.base_usable``), by
        position: 0 not asked yet, 1 yes, 2 no."""

    def _link(self, mapped: mmap.mmap, pos: int) -> int:
        """The position of the stored base of the entry at ``pos``; ``_WHOLE_LINK`` for a whole
        object, ``_LOST_LINK`` for a base this pack does not hold (or a bad offset)."""
        links = self._links
        if links is None:
            links = _PACK_LINKS.get(self._view)
            if links is None:  # (two requests at once: the same answers, either array kept)
                links = _PACK_LINKS.setdefault(self._view, array("i", [_UNREAD_LINK]) * len(self._view))
            self._links = links
        found = links[pos]
        if found == _UNREAD_LINK:
            view = self._view
            entry = parse_entry(mapped, int(view.offsets[pos]), view.raw_len)
            if entry.type_num == OFS_DELTA:
                base = view.position_at_offset(entry.base_offset)
            elif entry.type_num == REF_DELTA:
                base = view.position(entry.base_name)
            else:
                base = _WHOLE_LINK
            found = links[pos] = _LOST_LINK if base is None else base
        return found

    def _base_usable(self, plan: PackPlan, index: int, base: int) -> bool:
        usable = self._usable
        if not usable:
            usable.extend(bytes(len(self._view)))
        if not usable[base]:
            usable[base] = 1 if plan.base_usable_at(self._view, base, index, same_pack_ok=False) else 2
        return usable[base] == 1

    def entry(self, plan: PackPlan, index: int, source: _Source, mapped: mmap.mmap, pos: int,
              new_offset: _NewOffsets) -> bytes | None:
        """The pack entry (header and compressed delta) for the object at ``pos``, or None."""
        view = self._view
        chain = [pos]
        at = pos
        prefix = b""
        try:
            for _ in range(MAX_CHAIN_WALK):
                base = self._link(mapped, at)
                if base == _WHOLE_LINK:  # a whole object that is not sent: a sibling of the chain's may be
                    return self._sibling_entry(source, mapped, chain, new_offset, plan.ofs_delta)
                if base == _LOST_LINK or base in chain:
                    return None
                if source.selected[base] and base < pos:  # written before this entry
                    if plan.ofs_delta:
                        prefix, kind = encode_ofs(new_offset[pos] - new_offset[base]), OFS_DELTA
                    else:
                        prefix, kind = view.names[base], REF_DELTA
                    break
                if self._base_usable(plan, index, base):
                    prefix, kind = view.names[base], REF_DELTA
                    break
                chain.append(base)
                at = base
            else:
                return None
            if self._resolver is not None and self._kind(mapped, base) == TREE:
                pieces = self._tree_pieces(pos, base)
            else:
                pieces = self._compose(mapped, chain)
            if pieces.target_size and len(pieces) > MAX_COMPOSED_PIECES:
                return None
            delta = encode_delta(pieces)
        except (DeltaError, zlib.error, IndexError, KeyError, CorruptPack):
            return None  # a chain this cannot follow: the object goes whole, resolved by the store
        if len(delta) > pieces.target_size // 2 + 32:
            return None  # hardly a delta: whole compresses as well and reads faster
        return encode_entry_header(kind, len(delta)) + prefix + zlib.compress(delta)

    def _sibling_entry(self, source: _Source, mapped: mmap.mmap, chain: list[int], new_offset: _NewOffsets,
                       ofs_delta: bool) -> bytes | None:
        """The object at ``chain[0]`` as a delta against an object sent before it whose stored chain
        ends at the same whole object (``chain[-1]``, not sent), or None.

        Both are composed against that object and the object's copies are read from the sibling
        where it holds the same bytes (``git_deltachain.rebase``).  The sibling is the one of the
        ``MAX_SIBLINGS_TRIED`` whose chains meet this one nearest (close versions), among the
        ``MAX_SIBLINGS`` of the family sent last before it, that gives the smallest delta.
        """
        root = chain[-1]
        pos = chain[0]
        view = self._view
        if self._families is None:
            self._families = self._family_map(source, mapped)
        family = self._families.get(root)
        if not family or len(chain) < 2:
            return None
        at = bisect_left(family, pos)
        candidates = family[max(0, at - MAX_SIBLINGS):at]
        if not candidates:
            return None
        depth_in = {node: i for i, node in enumerate(chain)}
        ranked: list[tuple[int, int, list[int]]] = []
        for candidate in candidates:
            walk = [candidate]
            node: int | None = candidate
            while node is not None and node not in depth_in and len(walk) <= MAX_CHAIN_WALK:
                node = self._base_of(mapped, node)
                if node is not None:
                    walk.append(node)
            if node is None or node not in depth_in:
                continue
            ranked.append((len(walk) - 1 + depth_in[node], -candidate, walk + chain[depth_in[node] + 1:]))
        if not ranked:
            return None
        if self._resolver is not None and self._kind(mapped, root) == TREE:
            return self._sibling_tree(pos, [walk[0] for *_, walk in sorted(ranked)[:MAX_SIBLINGS_TRIED]],
                                      new_offset, ofs_delta)
        text = self._roots.get(root)
        if text is None:
            entry = parse_entry(mapped, int(view.offsets[root]), view.raw_len)
            if entry.type_num not in (COMMIT, TREE, BLOB, TAG) or entry_size(entry.size_header) > MAX_SIBLING_BASE:
                return None
            text = zlib.decompress(mapped[entry.data_start:view.entry_end(root)])
            self._roots.put(root, text)
        target = self._compose(mapped, chain[:-1])
        return self._smallest_delta(pos, (
            (rebase(target, self._compose(mapped, sibling_chain[:-1]), text, MAX_COMPOSED_PIECES), sibling_chain[0])
            for _distance, _latest, sibling_chain in sorted(ranked)[:MAX_SIBLINGS_TRIED]), new_offset, ofs_delta)

    def _smallest_delta(self, pos: int, tried: Iterable[tuple[Pieces, int]], new_offset: _NewOffsets,
                        ofs_delta: bool) -> bytes | None:
        """The entry of the object at ``pos`` as the smallest of the deltas ``tried`` (each against
        the sibling it names) not over half the object, or None."""
        best: tuple[bytes, int] | None = None
        for pieces, sibling in tried:
            delta = encode_delta(pieces)
            if len(delta) <= pieces.target_size // 2 + 32 and (best is None or len(delta) < len(best[0])):
                best = (delta, sibling)
        if best is None:
            return None
        delta, sibling = best
        if ofs_delta:
            prefix, kind = encode_ofs(new_offset[pos] - new_offset[sibling]), OFS_DELTA
        else:
            prefix, kind = self._view.names[sibling], REF_DELTA
        return encode_entry_header(kind, len(delta)) + prefix + zlib.compress(delta)

    def _kind(self, mapped: mmap.mmap, pos: int) -> int:
        """The type of the object at ``pos`` (its stored chain's whole object's), from the links
        already read and one entry header per family; 0 for a chain that does not end in this pack."""
        kinds = self._kinds
        if not kinds:
            kinds.extend(bytes(len(self._view)))
        path: list[int] = []
        node = pos
        while not kinds[node] and len(path) <= MAX_CHAIN_WALK:
            path.append(node)
            base = self._link(mapped, node)
            if base < 0:
                break
            node = base
        kind = kinds[node]
        if not kind:
            if self._link(mapped, node) != _WHOLE_LINK:
                return 0
            view = self._view
            kind = parse_entry(mapped, int(view.offsets[node]), view.raw_len).type_num
        for node in path:
            kinds[node] = kind
        return kind

    def _tree_pieces(self, pos: int, base: int) -> Pieces:
        """The tree at ``pos`` in terms of the one at ``base``, both read whole (``tree_pieces``)."""
        assert self._resolver is not None
        names = self._view.names
        kind, target = self._resolver.read(binascii.hexlify(names[pos]))
        base_kind, base_text = self._resolver.read(binascii.hexlify(names[base]))
        if kind != TREE or base_kind != TREE:
            raise DeltaError("not two trees")
        return tree_pieces(target, base_text, self._view.raw_len)

    def _sibling_tree(self, pos: int, siblings: list[int], new_offset: _NewOffsets, ofs_delta: bool) -> bytes | None:
        """``_sibling_entry`` for a tree: against the sibling whose entries give the smallest delta
        (``tree_pieces``), the trees read whole, where the family's root was read and both chains
        composed and rebased on it."""
        return self._smallest_delta(pos, ((self._tree_pieces(pos, sibling), sibling) for sibling in siblings),
                                    new_offset, ofs_delta)

    def _base_of(self, mapped: mmap.mmap, pos: int) -> int | None:
        """The stored delta base of the entry at ``pos`` in this pack; None for a whole object."""
        base = self._link(mapped, pos)
        return None if base < 0 else base

    def _family_map(self, source: _Source, mapped: mmap.mmap) -> dict[int, list[int]]:
        """For each whole object of this pack, the sent objects (positions, ascending) whose stored
        chains end at it: one header read per entry on the chains, the first time it is needed."""
        unknown = -2
        roots = array("i", [unknown]) * len(self._view)   # 4 bytes an entry of the pack, not a dict's 100
        families: dict[int, list[int]] = {}
        for pos in source.positions:
            path: list[int] = []
            node: int | None = pos
            while node is not None and roots[node] == unknown and len(path) <= MAX_CHAIN_WALK:
                path.append(node)
                node = self._base_of(mapped, node)
            if node is None:       # the last of the path is whole: its own root
                root = path[-1]
            else:                  # known already, or a chain too long (-1: no family)
                root = roots[node] if roots[node] != unknown else -1
            for at in path:
                roots[at] = root
            if root >= 0 and root != pos:
                families.setdefault(root, []).append(pos)
        return families

    def _compose(self, mapped: mmap.mmap, chain: list[int]) -> Pieces:
        """Pieces of ``chain[0]`` in terms of the base of ``chain[-1]`` (chain: each entry's base next)."""
        bottom = chain[-1]
        # the highest link already composed against this base
        start = len(chain) - 1
        pieces = None
        for i, at in enumerate(chain[:-1]):
            found = self._composed.get((at, bottom))
            if found is not None:
                start, pieces = i, found
                break
        if pieces is None:
            pieces = self._parse(mapped, bottom)
        for i in range(start - 1, -1, -1):
            pieces = compose(self._parse(mapped, chain[i]), pieces, MAX_COMPOSED_PIECES)
            if i:
                self._composed.put((chain[i], bottom), pieces)
        return pieces

    def _parse(self, mapped: mmap.mmap, pos: int) -> Pieces:
        parsed = self._parsed.get(pos)
        if parsed is None:
            view = self._view
            entry = parse_entry(mapped, int(view.offsets[pos]), view.raw_len)
            parsed = parse_delta(zlib.decompress(mapped[entry.data_start:view.entry_end(pos)]))
            self._parsed.put(pos, parsed)
        return parsed


PIECE_COST = 88
"""What a delta's piece holds in a ``Pieces`` (tracemalloc): its four list slots and the int objects
of its start, source and length (most are past the small ints Python shares)."""
LITERAL_COST = 33
"""What an inserted piece's bytes object holds beside its bytes (copies share one empty one)."""


def _pieces_cost(pieces: Pieces) -> int:
    """About the bytes ``pieces`` holds, for the caches' budgets (they counted 40 bytes a piece, and
    held 2.2 times their 16 MiB each)."""
    literal = pieces.literal
    return (64 + PIECE_COST * len(pieces) + sum(map(len, literal))
            + LITERAL_COST * (len(literal) - literal.count(b"")))


class _Resolver:
    """Reads the objects a pack sends whole, through a ``PackObjectReader`` of this pack's own (made
    on first use over the writer's maps, closed with the pack): its cache of delta bases is bounded
    and dropped at the end.  dulwich's ``get_raw`` kept up to 20 MiB of resolved bases per pack of
    the repository object, which outlived the request: a partial clone's checkout (1,500 blobs sent
    whole) left the server's RSS 100 MiB higher."""

    def __init__(self, store: DiskObjectStore, maps: PackMaps, reader: PackObjectReader | None = None) -> None:
        self._store = store
        self._maps = maps
        self._reader: PackObjectReader | None = reader

    def read(self, hexsha: bytes) -> tuple[int, bytes]:
        if self._reader is None:
            self._reader = PackObjectReader(self._store, _pack_views(self._store), self._maps)
        return self._reader.read(hexsha)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _write_whole(resolver: _Resolver, hexsha: bytes, out: _Output) -> None:
    type_num, raw = resolver.read(hexsha)
    out.write(encode_entry_header(type_num, len(raw)))
    out.write(zlib.compress(raw))


def _loose_stream(store: BaseObjectStore, hexsha: bytes) -> tuple[int, int, Iterator[bytes]] | None:
    """A loose blob over ``core.bigFileThreshold`` as ``RawLooseObjectStore.loose_stream`` gives it."""
    stream = getattr(store, "loose_stream", None)
    return stream(hexsha) if stream is not None else None


def _write_streamed(type_num: int, size: int, pieces: Iterator[bytes], out: _Output) -> Iterator[bytes]:
    """An object sent whole as it is read, deflated a piece at a time (git's pack-objects streams a
    blob over ``core.bigFileThreshold`` so): never the whole object in memory."""
    out.write(encode_entry_header(type_num, size))
    deflater = zlib.compressobj()
    for piece in pieces:
        out.write(deflater.compress(piece))
        if out.ready():
            yield from out.take()
    out.write(deflater.flush())
