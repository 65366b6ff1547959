"""Read whole objects straight from memory-mapped packs, for the counting walk.

Counting without a bitmap reads every new commit and tree (tens of thousands
on a real history), and the per-call overhead of a general object store
dominates that.  This reader keeps the pack index views, maps each pack once,
inflates with ``zlib`` and applies deltas with dulwich's C ``apply_delta``,
with a small cache of resolved delta bases (most tree deltas share a base).
Objects that are not in a pack (loose, alternates) come from the store.
"""

from __future__ import annotations

import binascii
import contextlib
import mmap
import os
import re
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from itertools import compress
from types import TracebackType
from typing import Any, Self, cast

from dulwich.errors import ObjectFormatException
from dulwich.object_store import BaseObjectStore, DiskObjectStore
from dulwich.objects import DEFAULT_LOOSE_OBJECT_SIZE_LIMIT, ObjectID, sha_to_hex

try:
    from dulwich._pack import apply_delta  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - dulwich built without its C extension
    from dulwich.pack import apply_delta

from backends.git_packindex import MappedPacks, PackIndexView, pack_views
from backends.interfaces import object_format_of
from protocols.git_receive import DELTA_HEAD_MAX, delta_sizes

OFS_DELTA = 6
REF_DELTA = 7
MAX_HEADER = 32
"""Bytes read for an entry header: the type-and-size varint and an OFS_DELTA distance (10 each)."""
BASE_CACHE_BYTES = 16 << 20
"""Resolved objects ``_read_at`` keeps (least recently used out).  A --deepen naming 10,000 shallow
lines and as many haves (42,000 commits) resolves 53,825 tree entries twice in the counting (the
haves' walk, then the wants' walk over the same stretch, 52,000 steps apart) and once more in the
writer: 156,362 steps.  Only a cache of the whole set (+280 MiB) cut them (server CPU 4.35 -> 3.84 s,
git daemon 2.3); keeping the inflated deltas too (16 MiB: 55,886 inflations) saved nothing, as the
cost is resolving (each step a whole 5 KB tree), not inflating; the writer already resolves each
entry once, in pack order.  The two walks now go in one order (``Walker.closures``): the counting
resolves each of the 53,696 entries once (104,391 steps before)."""
MAX_CHAIN = 10000
MAX_PEEL = 256
"""The tags a chain of tags of tags may hold wherever one is followed to what it names: the ref
advertisement's peeled values, include-tag, a fetch's filters and the objects it names, an archive,
the web pages.  A longer chain is listed unpeeled by the advertisement (the operator told), refused
elsewhere (or, where the chain only adds objects, not followed past that many tags); git follows
chains of any length.  It bounds one ref's work (a chain cannot loop, but a damaged object store's
can); the advertisement reads each tag once however many refs' chains pass through it.  With 32, a
chain of 40 (which ``git ls-remote`` lists peeled) made every advertisement of its repository fail
("tag chain longer than 32")."""
DELTA_FEED = 64
"""Compressed bytes of a delta fed to the inflater at a time (``size_of``)."""
MAX_RESCANS = 3
"""Passes of ``types_of`` over the mapped indexes when a pack found there was removed meanwhile (a
repack: its objects are in its successor); what is left is looked up one by one."""
_KIND_OF_FIRST_BYTE = bytes((byte >> 4) & 7 for byte in range(256))
"""A pack entry's first byte -> the type it is stored as (``bytes.translate``)."""
_DELTAS = frozenset({OFS_DELTA, REF_DELTA})
MAX_KINDS = 1 << 20
"""Pack entries whose type ``type_of`` remembers (a few tens of MB at most)."""


class CorruptPack(Exception):
    """A stored entry could not be decoded."""


class _PackGone(Exception):
    """A viewed pack's file was removed (a repack meanwhile): its objects are read elsewhere."""


class PackMaps:
    """Read-only maps of pack files by path, made on first use and closed together.

    The readers and the writer of one request share them: a pack mapped once is counted once in
    the server's memory (a partial clone's checkout fetch read its pack through three maps: the
    counting's, the writer's and the reader of the objects it sends whole).
    """

    def __init__(self) -> None:
        self._maps: dict[str, mmap.mmap] = {}

    def get(self, path: str) -> mmap.mmap:
        mapped = self._maps.get(path)
        if mapped is None:
            with open(path, "rb") as f:
                mapped = self._maps[path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return mapped

    def drop_pages(self) -> None:
        """Take every page out of the maps (they stay in the page cache, read back on use): what
        the counting read is not kept in the server's memory while the pack is written."""
        if hasattr(mmap, "MADV_DONTNEED"):
            for mapped in self._maps.values():
                mapped.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()


def read_outside_packs(store: BaseObjectStore, hexsha: bytes) -> tuple[int, bytes]:
    """An object the packs looked in do not hold: its loose file read as it is stored (a
    ``RawLooseObjectStore``'s ``loose_raw``), else whatever the store finds (``get_raw``: another
    pack, an alternate, or ``KeyError``).  dulwich parses a loose object whole to give its text: an
    all-loose repository of the corpus's 54,500 objects took 12.8 s to clone, 2 s of it parsing."""
    loose = getattr(store, "loose_raw", None)
    if loose is not None:
        with contextlib.suppress(ObjectFormatException):  # (the store's reader then says what is wrong)
            found = loose(hexsha)
            if found is not None:
                return found  # type: ignore[no-any-return]
    return store.get_raw(ObjectID(hexsha))


def header_outside_packs(store: BaseObjectStore, hexsha: bytes) -> tuple[int, int]:
    """The type and size of an object the packs looked in do not hold: from its loose file's
    header alone (a ``RawLooseObjectStore``'s ``loose_header``), else as ``read_outside_packs``
    reads it.  A partial clone's filter typed a 600 MiB loose blob by reading it whole, past the
    store's bound ("internal error"; git reads the header)."""
    header = getattr(store, "loose_header", None)
    if header is not None:
        with contextlib.suppress(ObjectFormatException):  # (the store's reader then says what is wrong)
            found = header(hexsha)
            if found is not None:
                return found  # type: ignore[no-any-return]
    kind, raw = read_outside_packs(store, hexsha)
    return kind, len(raw)


class _OtherPacks:
    """A reader's packs outside its views: their mapped indexes (None for a store with no pack
    directory), and dulwich's packs, listed when first asked for."""

    def __init__(self, store: BaseObjectStore, viewed: set[str], mapped: MappedPacks | None) -> None:
        self._store = store
        self._viewed = viewed
        self.mapped = mapped
        self._dulwich: list[Any] | None = None

    def dulwich_packs(self) -> list[Any]:
        if self._dulwich is None:
            self._dulwich = [pack for pack in getattr(self._store, "packs", ())
                             if getattr(pack, "_data_path", None) and pack._data_path not in self._viewed]
        return self._dulwich


class PackObjectReader:
    """``read(hexsha) -> (type_num, raw)`` over a fixed list of packs, then the store.

    The views must be read with the store's ``raw_len`` (``object_format_of(store)``).
    """

    def __init__(self, store: BaseObjectStore, views: list[PackIndexView], maps: PackMaps | None = None,
                 mapped: MappedPacks | None = None) -> None:
        """``maps``: the request's pack maps, which stay open when this reader closes (by default
        the reader has maps of its own).  ``mapped``: the mapped indexes of the store's packs that
        ``views`` leave out (``MappedPacks`` made with those views' packs skipped), a push's
        (``git_ingest.StoreLookups``), which stay open too (by default the reader maps its own
        on the first lookup outside the views)."""
        self._store = store
        self._shared_mapped = mapped
        self._views = views
        self._raw_len = object_format_of(store).raw_len
        """Bytes of a REF_DELTA's base name."""
        self._packs = maps if maps is not None else PackMaps()
        self._own_maps = maps is None
        self._maps: list[mmap.mmap | None] = [None] * len(views)
        self._cache: OrderedDict[tuple[int, int], tuple[int, bytes]] = OrderedDict()
        self._cached_bytes = 0
        self._kinds: dict[tuple[str, int], int] = {}
        """The type of pack entries ``type_of`` went through, by pack path and offset."""
        self._others: _OtherPacks | None = None
        """The store's packs that have no view here (on the first lookup outside the views)."""
        self._checked: set[str] = set()
        """Packs found through a mapped index whose trailer matched that index."""
        self._gone: set[int] = set()
        """Views whose pack file was removed (by a repack) before this reader mapped it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._own_maps:
            self._packs.close()
        others = self._others.mapped if self._others is not None else None
        if others is not None and others is not self._shared_mapped:
            others.close()
        self._others = None
        self._checked.clear()
        self._maps = [None] * len(self._views)
        self._cache.clear()
        self._cached_bytes = 0

    def read(self, hexsha: bytes) -> tuple[int, bytes]:
        binsha = binascii.unhexlify(hexsha)
        for i, view in enumerate(self._views):
            offset = view.offset_of(binsha)
            if offset is not None and i not in self._gone:
                try:
                    return self._read_at(i, offset)
                except _PackGone:  # a repack removed it meanwhile: the object's new copy is found below
                    continue
        return read_outside_packs(self._store, hexsha)

    def read_below(self, hexsha: bytes, large: int) -> tuple[int, bytes | None, int]:
        """``(type_num, raw, size)`` of an object, as ``read`` gives it, but for one stored whole
        in a viewed pack whose header says it has ``large`` bytes or more: ``raw`` is None then and
        nothing is inflated (``blob_pieces`` reads it a piece at a time), as for a loose blob over
        ``core.bigFileThreshold`` (``RawLooseObjectStore.streamed_size``).  One index lookup, each
        entry of the chain inflated at most once (an archive read each file's blob through three
        lookups, a delta's first bytes inflated for its size, and then dulwich's reader)."""
        binsha = binascii.unhexlify(hexsha)
        for i, view in enumerate(self._views):
            start = view.offset_of(binsha)
            if start is not None and i not in self._gone:
                try:
                    mapped = self._map(i)
                except _PackGone:
                    continue
                head = mapped[start:start + MAX_HEADER]
                if head and (head[0] >> 4) & 7 not in _DELTAS:
                    size = entry_size(head)
                    if size >= large:
                        return (head[0] >> 4) & 7, None, size
                kind, raw = self._read_at(i, start, keep=False)
                return kind, raw, len(raw)
        streamed = getattr(self._store, "streamed_size", None)
        loose_size: int | None = streamed(hexsha) if streamed is not None else None
        if loose_size is not None:
            return BLOB, None, loose_size
        kind, raw = read_outside_packs(self._store, hexsha)
        return kind, raw, len(raw)

    def type_of(self, hexsha: bytes) -> int:
        """The type of an object, from the headers of its pack entry and its delta chain (nothing
        inflated), in any of the store's packs; an object outside them is read from the store.
        ``KeyError`` when nowhere."""
        binsha = binascii.unhexlify(hexsha)
        walked: list[tuple[str, int]] = []
        kind: int | None = None
        for _ in range(MAX_CHAIN):
            found = self._locate(binsha)
            if found is None:
                kind = header_outside_packs(self._store, binascii.hexlify(binsha))[0]
                break
            kind, base = self._chain_type(*found, walked)
            if base is None:
                break
            binsha = base  # a REF_DELTA names its base
        if kind is None or len(walked) > MAX_CHAIN:
            raise CorruptPack("delta chain too long")
        if len(self._kinds) + len(walked) > MAX_KINDS:
            self._kinds.clear()
        self._kinds.update(dict.fromkeys(walked, kind))
        return kind

    def types_of(self, binshas: set[bytes]) -> dict[int, set[bytes]]:
        """The objects of ``binshas`` (binary names) by type (1-4; 0 or 5 for an entry of no valid
        type), as ``type_of`` says each: one not found anywhere is in none.

        Each pack is looked in once for all of them (``PackIndexView.find_many``, ``MappedPacks.find_many``:
        no lookup per object, and no view built for the push), and each type read from its entry's
        first byte by C-level maps; only deltas follow their chain one by one, and only the objects
        no pack holds (loose, an alternate's, a pack the mapped indexes do not read) are looked up
        one by one (``type_of``).  A push linking every file of a stored directory of 100,000 files
        spent 0.4 s of its server CPU typing them one by one."""
        found: dict[int, set[bytes]] = {}
        remaining = binshas
        for i, view in enumerate(self._views):
            if not remaining:
                break
            if i in self._gone:
                continue
            names, offsets = view.find_many(remaining)
            if not names:
                continue
            try:
                viewed = self._map(i)
            except _PackGone:  # its objects are found in the pack that replaced it, below
                continue
            self._type_entries(viewed, view.pack_path, names, offsets, found)
            remaining = set() if len(names) == len(remaining) else remaining.difference(names)
        if remaining and self._others is None:
            self._others = self._other_packs()
        others = self._others.mapped if self._others is not None else None
        for _ in range(MAX_RESCANS):
            if not remaining or others is None:
                break
            gone = False
            for path, names, offsets in others.find_many(remaining, rescan=True):
                mapped = self._mapped_pack(path)
                if mapped is None:  # removed by a repack meanwhile: its successor is listed at the next pass
                    others.drop(path)
                    gone = True
                    continue
                self._type_entries(mapped, path, names, offsets, found)
                remaining = set() if len(names) == len(remaining) else remaining.difference(names)
            if not gone:
                break
        for binsha in remaining:
            try:
                kind = self.type_of(binascii.hexlify(binsha))
            except KeyError:
                continue
            found.setdefault(kind, set()).add(binsha)
        return found

    def _type_entries(self, mapped: mmap.mmap, path: str, names: list[bytes], offsets: list[int],
                      found: dict[int, set[bytes]]) -> None:
        """Add ``names`` (their entries at ``offsets`` of the pack ``mapped``) to ``found`` by type:
        a whole object's from its entry's first byte, a delta's at the end of its chain."""
        if max(offsets) >= len(mapped) - self._raw_len:
            raise CorruptPack(f"truncated entry header at offset {max(offsets)} of {path}")
        kinds = bytes(map(mapped.__getitem__, offsets)).translate(_KIND_OF_FIRST_BYTE)
        for kind in set(kinds):
            if kind in (OFS_DELTA, REF_DELTA):
                continue
            into = found.setdefault(kind, set())
            into.update(names if kinds.count(kind) == len(kinds) else compress(names, map(kind.__eq__, kinds)))
        if OFS_DELTA in kinds or REF_DELTA in kinds:
            for at in compress(range(len(kinds)), map(_DELTAS.__contains__, kinds)):
                walked: list[tuple[str, int]] = []
                chained, base = self._chain_type(mapped, offsets[at], path, walked)
                # (a REF_DELTA's base: its type, wherever it is)
                kind = self.type_of(binascii.hexlify(base)) if base is not None else cast(int, chained)
                if len(self._kinds) + len(walked) > MAX_KINDS:
                    self._kinds.clear()
                self._kinds.update(dict.fromkeys(walked, kind))
                found.setdefault(kind, set()).add(names[at])

    def packed(self, hexsha: bytes) -> bool:
        """Whether the object is in one of the store's packs (a loose one is not)."""
        return self._locate(binascii.unhexlify(hexsha)) is not None

    def size_of(self, hexsha: bytes) -> int:
        """The size of an object from its pack entry's header, a delta's from the first bytes of
        the delta itself (its second number; nothing else inflated), in any of the store's packs;
        an object outside them (loose) is read from the store.  ``KeyError`` when nowhere."""
        found = self._locate(binascii.unhexlify(hexsha))
        if found is None:
            return header_outside_packs(self._store, hexsha)[1]
        mapped, offset, path = found
        head = mapped[offset:offset + MAX_HEADER]
        kind, p, _distance = _entry_header(head, offset)
        if kind not in (OFS_DELTA, REF_DELTA):
            return entry_size(head)
        at = offset + p + (self._raw_len if kind == REF_DELTA else 0)
        inflater = zlib.decompressobj()
        inflated = pending = b""
        while len(inflated) < DELTA_HEAD_MAX and not inflater.eof:
            if not pending:
                if at >= len(mapped):
                    break
                pending = mapped[at:at + DELTA_FEED]
                at += DELTA_FEED
            try:
                inflated += inflater.decompress(pending, DELTA_HEAD_MAX - len(inflated))
            except zlib.error as exc:
                raise CorruptPack(f"a delta at offset {offset} of {path} does not inflate: {exc}") from None
            pending = inflater.unconsumed_tail
        sizes = delta_sizes(inflated)
        if sizes is None:
            raise CorruptPack(f"a delta at offset {offset} of {path} ends before its sizes")
        return sizes[1]

    def _chain_type(self, mapped: mmap.mmap, offset: int, path: str, walked: list[tuple[str, int]]
                    ) -> tuple[int | None, bytes | None]:
        """Follow OFS_DELTA headers from ``offset``: the type at the end, or a REF_DELTA's base name."""
        for _ in range(MAX_CHAIN):
            kind = self._kinds.get((path, offset))
            if kind is not None:
                return kind, None
            walked.append((path, offset))
            kind, p, distance = _entry_header(mapped[offset:offset + MAX_HEADER], offset)
            if kind == OFS_DELTA:
                if not 0 < distance <= offset:
                    raise CorruptPack(f"bad OFS_DELTA base at offset {offset} of {path}")
                offset -= distance
            elif kind == REF_DELTA:
                base = mapped[offset + p:offset + p + self._raw_len]
                if len(base) != self._raw_len:
                    raise CorruptPack(f"truncated REF_DELTA base name at offset {offset} of {path}")
                return None, base
            else:
                return kind, None
        raise CorruptPack("delta chain too long")

    def _locate(self, binsha: bytes) -> tuple[mmap.mmap, int, str] | None:
        """Where an object's entry is: a viewed pack's map, else another pack of the store, found
        through its mapped index (``MappedPacks``: a pack whose view would cost more to build than
        this lookup); dulwich's index only for a pack whose index that does not read."""
        for i, view in enumerate(self._views):
            offset = view.offset_of(binsha)
            if offset is not None and i not in self._gone:
                try:
                    return self._map(i), offset, view.pack_path
                except _PackGone:
                    continue
        if self._others is None:
            self._others = self._other_packs()
        others = self._others.mapped
        if others is not None:
            found = others.find(binsha)
            while found is not None:
                path, offset = found
                mapped = self._mapped_pack(path)
                if mapped is not None:
                    return mapped, offset, path
                others.drop(path)  # gone (a repack): its successor is listed now
                found = others.find(binsha, rescan=True)
            if others.complete:
                return None
        for pack in self._others.dulwich_packs():
            try:
                offset = pack.index.object_offset(binsha)
            except KeyError:
                continue
            path = pack._data_path
            try:
                return self._packs.get(path), offset, path
            except FileNotFoundError:  # removed by a repack meanwhile
                continue
        return None

    def _other_packs(self) -> _OtherPacks:
        viewed = {view.pack_path for view in self._views}
        pack_dir = getattr(self._store, "pack_dir", None)
        mapped = self._shared_mapped
        if mapped is None and pack_dir is not None:
            mapped = MappedPacks(os.fspath(pack_dir), self._raw_len, skip=viewed)
        return _OtherPacks(self._store, viewed, mapped)

    def _mapped_pack(self, path: str) -> mmap.mmap | None:
        """The map of a pack found through its mapped index, once its trailer is seen to be the
        checksum that index names; None when it is gone (or is another pack by now)."""
        try:
            mapped = self._packs.get(path)
        except FileNotFoundError:  # removed by a repack meanwhile: read from its successor
            return None
        if path not in self._checked:
            assert self._others is not None and self._others.mapped is not None
            index = self._others.mapped.index_of(path)
            if index is None or mapped[len(mapped) - self._raw_len:] != index.checksum:
                return None
            self._checked.add(path)
        return mapped

    def _map(self, i: int) -> mmap.mmap:
        mapped = self._maps[i]
        if mapped is None:
            try:
                mapped = self._packs.get(self._views[i].pack_path)
            except FileNotFoundError:  # a repack removed it after its view was listed
                self._gone.add(i)
                raise _PackGone(self._views[i].pack_path) from None
            if len(mapped) != self._views[i].pack_size:
                raise CorruptPack(f"{self._views[i].pack_path} changed under its index")
            self._maps[i] = mapped
        return mapped

    def _read_at(self, i: int, offset: int, keep: bool = True) -> tuple[int, bytes]:
        """Resolve the entry at ``offset`` of pack ``i``, following its delta chain (by offsets:
        the pack's order is not needed, ``TableView``).

        Every object resolved on the way is cached: walks go from new to old
        history and git stores new versions whole and old ones as deltas
        against them, so the base of the next tree is usually in the cache.
        Without ``keep``, the object asked for is not (an archive's files: each read once).

        The hot path of a walk over trees stored deep in delta chains (a shallow clone's first
        ``--deepen=1``: 7,300 trees, 77,000 chain entries, each resolved once): the entries' steps
        are taken here and in ``_entry`` with no further call each, the cache kept in line."""
        cache = self._cache
        cached = cache.get((i, offset))
        if cached is not None:
            cache.move_to_end((i, offset))
            return cached
        view = self._views[i]
        mapped = self._map(i)
        entry = self._entry
        chain: list[tuple[int, bytes]] = []   # (offset, delta data), requested entry first
        at = offset
        for _ in range(MAX_CHAIN):
            kind, data, base_ref = entry(view, mapped, at)
            if kind == OFS_DELTA:
                chain.append((at, data))
                at = base_ref
                cached = cache.get((i, at))
                if cached is not None:
                    cache.move_to_end((i, at))
                    base = cached
                    break
            elif kind == REF_DELTA:
                chain.append((at, data))
                base = self.read(binascii.hexlify(_ref_name(base_ref, mapped, view)))
                break
            else:
                base = (kind, data)
                if keep or chain:
                    self._remember((i, at), base)
                break
        else:
            raise CorruptPack("delta chain too long")
        kind, raw = base
        limit = BASE_CACHE_BYTES
        largest = limit // 8
        total = self._cached_bytes
        for at, delta in reversed(chain):
            raw = b"".join(apply_delta(raw, delta))
            if (keep or at != offset) and len(raw) <= largest:  # (``_remember``, in line)
                resolved = kind, raw
                cache[(i, at)] = resolved
                total += len(raw)
                while total > limit:
                    total -= len(cache.popitem(last=False)[1][1])
        self._cached_bytes = total
        return kind, raw

    def _entry(self, view: PackIndexView, mapped: mmap.mmap, start: int) -> tuple[int, bytes, int]:
        """(type, inflated data, base offset for OFS_DELTA / header end for REF_DELTA) of the entry at
        ``start``: its data inflated until its zlib stream ends (where the next entry starts is not
        needed, nor the pack's order).  Its header read in line (``_entry_header``, ``entry_size``)."""
        head = mapped[start:start + MAX_HEADER]
        try:
            byte = head[0]
            kind = (byte >> 4) & 7
            size = byte & 0x0F
            p = 1
            shift = 4
            while byte & 0x80:
                byte = head[p]
                p += 1
                size |= (byte & 0x7F) << shift
                shift += 7
            base_ref = 0
            if kind == OFS_DELTA:
                byte = head[p]
                p += 1
                distance = byte & 0x7F
                while byte & 0x80:
                    byte = head[p]
                    p += 1
                    distance = ((distance + 1) << 7) | (byte & 0x7F)
                if not 0 < distance <= start:
                    raise CorruptPack(f"bad OFS_DELTA base at offset {start}")
                base_ref = start - distance
            elif kind == REF_DELTA:
                base_ref = start + p
                p += view.raw_len
        except IndexError:
            raise CorruptPack(f"truncated entry header at offset {start}") from None
        at = start + p
        end = view.pack_size - view.raw_len
        if size <= INFLATE_AT_ONCE:
            try:  # (``_inflate_entry``'s first try, in line)
                return kind, zlib.decompress(mapped[at:min(at + size + INFLATE_SLACK, end)]), base_ref
            except zlib.error:
                pass
        return kind, _inflate_entry(mapped, at, size, end, start), base_ref

    def _remember(self, key: tuple[int, int], value: tuple[int, bytes]) -> None:
        size = len(value[1])
        if size > BASE_CACHE_BYTES // 8:
            return
        self._cache[key] = value
        self._cached_bytes += size
        while self._cached_bytes > BASE_CACHE_BYTES:
            _, (_, dropped) = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped)


def _entry_header(head: bytes, offset: int) -> tuple[int, int, int]:
    """The header of the pack entry that ``head`` starts (read at ``offset``): its type, where the
    header ends (a REF_DELTA's base name starts there), and an OFS_DELTA's base distance (else 0)."""
    try:
        byte = head[0]
        kind = (byte >> 4) & 7
        p = 1
        while byte & 0x80:  # the size, not needed here
            byte = head[p]
            p += 1
        distance = 0
        if kind == OFS_DELTA:
            byte = head[p]
            p += 1
            distance = byte & 0x7F
            while byte & 0x80:
                byte = head[p]
                p += 1
                distance = ((distance + 1) << 7) | (byte & 0x7F)
    except IndexError:
        raise CorruptPack(f"truncated entry header at offset {offset}") from None
    return kind, p, distance


def entry_size(head: bytes) -> int:
    """The object size a pack entry's type-and-size header holds."""
    size = head[0] & 0x0F
    shift = 4
    for byte in head[1:]:
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return size if head[0] & 0x80 else head[0] & 0x0F


MAX_ALTERNATE_DEPTH = 5
"""How deep ``objects/info/alternates`` are followed (git's limit)."""


def pack_dirs(store: DiskObjectStore) -> list[str]:
    """The pack directories of a store on disk, its own first, then those of the stores it borrows
    objects from (``objects/info/alternates``: a fork made with ``git clone --shared``, followed as
    git follows them, 5 deep), each once."""
    found = [os.fspath(store.pack_dir)]
    seen = {os.path.realpath(found[0])}
    pending: list[tuple[BaseObjectStore, int]] = [(store, 0)]
    while pending:
        current, depth = pending.pop(0)
        if depth >= MAX_ALTERNATE_DEPTH:
            continue
        try:
            borrowed = current.alternates if isinstance(current, DiskObjectStore) else []
        except (OSError, ValueError):  # an unreadable alternates file: as if none
            borrowed = []
        for alternate in borrowed:
            if not isinstance(alternate, DiskObjectStore):
                continue
            directory = os.fspath(alternate.pack_dir)
            real = os.path.realpath(directory)
            if real in seen:
                continue
            seen.add(real)
            found.append(directory)
            pending.append((alternate, depth + 1))
    return found


def store_views(store: DiskObjectStore) -> list[PackIndexView]:
    """The cached index views of a store's packs and of those it borrows from (``pack_dirs``)."""
    raw_len = object_format_of(store).raw_len
    return [view for directory in pack_dirs(store) for view in pack_views(directory, raw_len)]


BLOB = 3
PIECE_STEP = 1 << 20
"""Bytes of a blob ``blob_pieces`` gives, and of its pack entry it reads, at a time."""


def blob_pieces(store: BaseObjectStore, hexsha: bytes, step: int = PIECE_STEP
                ) -> tuple[int, Iterator[bytes]] | None:
    """A blob stored whole in one of the store's packs: its size (from its entry's header) and its
    bytes, inflated ``step`` at a time as they are read (its pack kept mapped until then); a loose
    one over ``core.bigFileThreshold`` likewise (``RawLooseObjectStore.loose_stream``); None when
    it is stored otherwise (as a delta, loose and smaller)."""
    reader = size_reader(store)
    try:
        found = reader._locate(binascii.unhexlify(hexsha))
        if found is not None:
            mapped, offset, path = found
            head = mapped[offset:offset + MAX_HEADER]
            kind, p, _distance = _entry_header(head, offset)
            if kind == BLOB:
                size = entry_size(head)
                return size, _inflated(reader, mapped, offset + p, size, step, f"{path} at {offset}")
    except BaseException:
        reader.close()
        raise
    reader.close()
    stream = getattr(store, "loose_stream", None)
    streamed = stream(hexsha) if stream is not None else None
    return (streamed[1], streamed[2]) if streamed is not None else None


def _inflated(reader: PackObjectReader, mapped: mmap.mmap, at: int, size: int, step: int, where: str
              ) -> Iterator[bytes]:
    try:
        inflater = zlib.decompressobj()
        pending = b""
        given = 0
        while not inflater.eof:
            if not pending:
                if at >= len(mapped):
                    break
                release_pages(mapped, at, 2 * step)
                pending = mapped[at:at + step]
                at += len(pending)
            try:
                out = inflater.decompress(pending, step)
            except zlib.error as exc:
                raise CorruptPack(f"the blob in {where} does not inflate: {exc}") from None
            pending = inflater.unconsumed_tail
            given += len(out)
            if given > size:
                break
            if out:
                yield out
        if given != size or not inflater.eof:
            raise CorruptPack(f"the blob in {where} is not the {size} bytes its header says")
    finally:
        reader.close()


def release_pages(mapped: mmap.mmap, upto: int, window: int) -> None:
    """Drop our page mappings of the ``window`` bytes below ``upto``: the data stays in the page
    cache, not in our RSS (earlier pages were dropped by earlier calls).

    Entries are read in ascending offset order, so pages behind the cursor are seldom read again
    (the delta bases of an object sent whole: read back from the page cache); a 200 MB blob read
    through the map otherwise counted 200 MB.
    """
    aligned = upto // mmap.PAGESIZE * mmap.PAGESIZE
    start = max(0, aligned - window) // mmap.PAGESIZE * mmap.PAGESIZE
    if aligned > start and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED, start, aligned - start)


def size_reader(store: BaseObjectStore) -> PackObjectReader:
    """A reader of object sizes (``size_of``) over the store's packs and those it borrows from
    (their cached index views)."""
    if not isinstance(store, DiskObjectStore):
        return PackObjectReader(store, [])
    return PackObjectReader(store, store_views(store))


def _ref_name(at: int, mapped: mmap.mmap, view: PackIndexView) -> bytes:
    raw_len = view.raw_len
    name = mapped[at:at + raw_len]
    if len(name) != raw_len or at + raw_len > view.pack_size - raw_len:
        raise CorruptPack("truncated REF_DELTA base name")
    return name


def _inflate_entry(mapped: mmap.mmap, at: int, size: int, end: int, start: int) -> bytes:
    """The zlib stream of the entry at ``start`` whose data begins at ``at``, inflated: its header's
    ``size`` and a little more read first (deflate seldom grows data), then more until the stream
    ends, never past ``end`` (the pack's trailing checksum)."""
    step = size + INFLATE_SLACK
    if size <= INFLATE_AT_ONCE:
        try:  # (most entries: their whole stream within that, the bytes past its end ignored)
            return zlib.decompress(mapped[at:min(at + step, end)])
        except zlib.error:
            pass
    inflater = zlib.decompressobj()
    pieces = []
    try:
        while not inflater.eof:
            if at >= end:
                raise CorruptPack(f"bad zlib data at offset {start}")
            pieces.append(inflater.decompress(mapped[at:min(at + step, end)]))
            at += step
            step = max(step, INFLATE_SLACK * 16)
    except zlib.error as exc:
        raise CorruptPack(f"bad zlib data at offset {start}") from exc
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


INFLATE_SLACK = 64
"""Bytes read past an entry's inflated size at first (a zlib header and checksum, a stored block's)."""
INFLATE_AT_ONCE = 64 << 10
"""Entries up to this size are inflated in one call from their size and ``INFLATE_SLACK`` bytes
(a failure, its stream longer, costs at most this much inflated again); a larger one is inflated
once, piece by piece: an incompressible one's stream is longer than that (by some 330 bytes a
MiB: deflate's stored blocks), and the one call inflated all of it before failing, then it was
inflated again (a 32 MiB binary: 0.17 s of CPU where one pass takes 0.08)."""


_LOOSE_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
LOWER_HEX = re.compile(rb"[0-9a-f]+")
"""Hex digits as git writes ids (lower case): ``fullmatch`` of a name of the right length tells
an id from anything else."""


_ABSENT = object()
"""``RawLooseObjectStore._streamable_here``: the store has no loose file of the object."""


class RawLooseObjectStore(DiskObjectStore):
    """A repository's object store that reads a loose object it cannot parse as it is stored.

    dulwich parses a loose object whole whenever it reads it, even for its raw text
    (``get_raw``) or to learn that it is there (``contains_loose``): a loose commit whose
    header git's fsck would fault (a date an old tool wrote) made every advertisement of its
    repository an internal error, where git serves it (packed, it was already read raw).
    Adopted by the repositories the fs backend opens (``adopt_store``).

    The stores it borrows from (``alternates``) are of its kind and its object format (dulwich
    opened them as SHA-1 stores: a SHA-256 fork's borrowed loose objects were unreadable), and
    are followed ``MAX_ALTERNATE_DEPTH`` deep, as git follows them (a loop of alternates
    recursed until Python gave up).
    """

    _alternate_depth = 0
    stream_above = DEFAULT_LOOSE_OBJECT_SIZE_LIMIT
    """A loose blob larger than this (``core.bigFileThreshold``, as dulwich's open read it) is
    sent a piece at a time (``loose_stream``), as git's pack-objects streams one."""

    @property
    def alternates(self) -> list[BaseObjectStore]:
        if self._alternates is None:
            found: list[BaseObjectStore] = []
            if self._alternate_depth < MAX_ALTERNATE_DEPTH:
                for path in [*self._read_alternate_paths(), *self._extra_alternate_paths]:
                    borrowed = RawLooseObjectStore(path, object_format=self.object_format)
                    borrowed._alternate_depth = self._alternate_depth + 1
                    found.append(borrowed)
            self._alternates = found
        return self._alternates

    def get_raw(self, name: Any) -> tuple[int, bytes]:
        try:
            return super().get_raw(name)
        except (ObjectFormatException, ValueError, IndexError):  # dulwich's parse of a loose object
            found = self.loose_raw(name)
            if found is None:
                raise
            return found

    def contains_loose(self, sha: Any) -> bool:
        """Whether the object's loose file is there (not parsed: a file that does not read as an
        object is found, and its reader says what is wrong)."""
        hexname = self._hex(sha)
        return hexname is not None and os.path.isfile(self._get_shafile_path(hexname))

    def loose_raw(self, name: bytes) -> tuple[int, bytes] | None:
        """A loose object's type and text as stored; None when there is no such file.  Within the
        store's bound on a loose object's size (dulwich's); what is not a loose object raises
        ``ObjectFormatException``."""
        hexname = self._hex(name)
        if hexname is None:
            return None
        try:
            with open(self._get_shafile_path(hexname), "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        limit = self.loose_object_size_limit
        hexsha = hexname.decode("ascii")
        inflater = zlib.decompressobj()
        try:
            text = inflater.decompress(data, limit + 64)  # the header's few bytes besides
        except zlib.error as exc:
            raise ObjectFormatException(f"loose object {hexsha} does not inflate: {exc}") from None
        if inflater.unconsumed_tail:
            raise ObjectFormatException(f"loose object {hexsha} is larger than {limit} bytes")
        if not inflater.eof:
            raise ObjectFormatException(f"loose object {hexsha} does not inflate: it is cut short")
        header, nul, body = text.partition(b"\0")
        kind, _, size = header.partition(b" ")
        type_num = _LOOSE_TYPES.get(kind)
        if not nul or type_num is None or not size.isdigit() or int(size) != len(body):
            raise ObjectFormatException(f"loose object {hexsha} has no valid header")
        return type_num, body

    def loose_header(self, name: bytes) -> tuple[int, int] | None:
        """A loose object's type and size from its header (the rest not inflated); None when
        there is no such file.  ``ObjectFormatException`` for a header git does not write."""
        hexname = self._hex(name)
        if hexname is None:
            return None
        try:
            file = open(self._get_shafile_path(hexname), "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return None
        with file:
            header = _loose_header(file, hexname.decode("ascii"))
        if header is None:
            raise ObjectFormatException(f"loose object {hexname.decode('ascii')} has no valid header")
        return header[0], header[1]

    def loose_stream(self, name: bytes) -> tuple[int, int, Iterator[bytes]] | None:
        """A loose blob larger than ``stream_above`` as its type, size and text in pieces of at
        most ``PIECE_STEP`` bytes, inflated as they are taken; None for any other object (read it
        whole).  A loose blob past the store's bound on what it inflates at once (dulwich's 512
        MiB) made each clone of its repository "internal error", where git streams it.  What does
        not inflate to the size its header gives raises ``ObjectFormatException`` when it is
        reached (the pack is cut short, as git's would be)."""
        opened = self._streamable(name)
        if opened is None:
            return None
        file, (type_num, size, inflating, first), hexsha = opened
        return type_num, size, _loose_pieces(file, size, inflating, first, hexsha)

    def streamed_size(self, name: bytes) -> int | None:
        """The size of the loose blob ``loose_stream`` would give in pieces; None for any other."""
        opened = self._streamable(name)
        if opened is None:
            return None
        opened[0].close()
        return opened[1][1]

    def _streamable(self, name: bytes) -> tuple[Any, tuple[int, int, _Inflating, bytes], str] | None:
        """A loose blob over ``stream_above``: its open file, its header (``_loose_header``) and id;
        the repository's own loose file first, then those of the stores it borrows from
        (``alternates``, in order, each one's own before its alternates': git's order), each
        against this store's bound (the repository's ``core.bigFileThreshold``: an alternate's
        blob was read whole, whatever its size).  Only a file that could inflate past that size
        (zlib's ratio) is opened: the others cost a ``stat``."""
        hexname = self._hex(name)
        if hexname is None:
            return None
        for store in self._loose_stores():
            found = store._streamable_here(hexname, self.stream_above)
            if found is not _ABSENT:
                return found  # type: ignore[return-value]
        return None

    def _loose_stores(self) -> Iterator[RawLooseObjectStore]:
        """This store, then each it borrows from and theirs, depth first (``MAX_ALTERNATE_DEPTH``)."""
        yield self
        for borrowed in self.alternates:
            if isinstance(borrowed, RawLooseObjectStore):
                yield from borrowed._loose_stores()

    def _streamable_here(self, hexname: Any, above: int
                         ) -> tuple[Any, tuple[int, int, _Inflating, bytes], str] | None | object:
        """``_streamable`` of this store's own loose file for ``hexname``: ``_ABSENT`` when it has
        none, None for one that is not a blob over ``above``."""
        path = self._get_shafile_path(hexname)
        hexsha = hexname.decode("ascii")
        try:
            if os.stat(path).st_size * MAX_DEFLATE_RATIO + MAX_HEADER <= above:
                return None
            file = open(path, "rb")  # noqa: SIM115 (closed by the caller, or below)
        except FileNotFoundError:
            return _ABSENT
        try:
            header = _loose_header(file, hexsha)
        except BaseException:
            file.close()
            raise
        if header is None or header[0] != _LOOSE_TYPES[b"blob"] or header[1] <= above:
            file.close()
            return None
        return file, header, hexsha

    def _hex(self, sha: bytes) -> Any:
        """The hex id of a binary or hex one; None for what is neither (never a path)."""
        if len(sha) == self.object_format.oid_length:
            return sha_to_hex(sha)  # type: ignore[arg-type]
        if len(sha) == self.object_format.hex_length and LOWER_HEX.fullmatch(sha):
            return sha
        return None


HEADER_STEP = 4096
"""Bytes of a loose file read, and inflated, to find its header."""
MAX_DEFLATE_RATIO = 1032
"""The most a byte of zlib data inflates to (a stream of one repeated byte): a loose file smaller
than its limit over this cannot hold an object of ``stream_above`` bytes."""


class _Inflating:
    """A loose file's zlib stream inflated ``step`` bytes at most at a time (its header's few,
    then ``PIECE_STEP``)."""

    def __init__(self, file: Any, hexsha: str) -> None:
        self.file = file
        self.hexsha = hexsha
        self.inflater = zlib.decompressobj()
        self.pending = b""
        self.step = HEADER_STEP

    def take(self) -> bytes:
        """The next piece of inflated text; ``b""`` at the end of the zlib stream."""
        while True:
            if not self.pending:
                if self.inflater.eof:
                    return b""
                self.pending = self.file.read(self.step) or self._cut_short()
            try:
                piece = self.inflater.decompress(self.pending, self.step)
            except zlib.error as exc:
                raise LooseObjectCorrupt(self.hexsha, self.file, f"does not inflate: {exc}") from None
            self.pending = self.inflater.unconsumed_tail  # (what follows the zlib stream is not read)
            if piece:
                return piece

    def _cut_short(self) -> bytes:
        raise LooseObjectCorrupt(self.hexsha, self.file, "does not inflate: it is cut short")


class LooseObjectCorrupt(ObjectFormatException):
    """A loose object found damaged as it was streamed (``loose_stream``): cut short, not zlib, or
    inflating to another size than its header gives; ``hexsha`` and ``path`` name it for the
    operator's log line (the client is told as of any object the server cannot read)."""

    def __init__(self, hexsha: str, file: Any, why: str) -> None:
        super().__init__(f"loose object {hexsha} {why}")
        self.hexsha = hexsha
        self.path = os.fsdecode(getattr(file, "name", "") or "")


def _loose_header(file: Any, hexsha: str) -> tuple[int, int, _Inflating, bytes] | None:
    """A loose file's type and size from its header, the stream that goes on inflating it and the
    text inflated past the header; None when its header is not one git writes."""
    inflating = _Inflating(file, hexsha)
    text = b""
    while b"\0" not in text and len(text) <= MAX_HEADER and (piece := inflating.take()):
        text += piece
    header, nul, body = text.partition(b"\0")
    kind, _, size = header.partition(b" ")
    type_num = _LOOSE_TYPES.get(kind)
    if not nul or type_num is None or not size.isdigit():
        return None
    inflating.step = PIECE_STEP
    return type_num, int(size), inflating, body


def _loose_pieces(file: Any, size: int, inflating: _Inflating, first: bytes, hexsha: str) -> Iterator[bytes]:
    """The rest of a loose object's text from ``_loose_header``, checked against its size."""
    with file:
        piece, seen = first, 0
        while True:  # (``first`` may be empty: the header inflated alone)
            seen += len(piece)
            if seen > size:
                break
            if piece:
                yield piece
            piece = inflating.take()
            if not piece:
                break
        if seen != size:
            raise LooseObjectCorrupt(hexsha, file, f"does not hold the {size} bytes its header gives")


def adopt_store(store: BaseObjectStore) -> None:
    """Make a repository's plain ``DiskObjectStore`` a ``RawLooseObjectStore`` (dulwich's ``Repo``
    makes its own store; the subclass adds behaviour, no state), its bound on a loose object's
    inflated size no lower than dulwich's default (``core.bigFileThreshold`` is not one to git)."""
    if type(store) is DiskObjectStore:
        store.__class__ = RawLooseObjectStore
    limit = getattr(store, "loose_object_size_limit", None)
    if isinstance(store, RawLooseObjectStore) and isinstance(limit, int):
        store.stream_above = limit
    if isinstance(store, DiskObjectStore) and isinstance(limit, int) and limit < DEFAULT_LOOSE_OBJECT_SIZE_LIMIT:
        # dulwich's open takes core.bigFileThreshold as the most it inflates of one loose object:
        # 1k made every loose object past 1 KiB unreadable (each clone "internal error"), where
        # to git it only says which blobs are not delta-compressed; it may raise the bound, not lower it
        store.loose_object_size_limit = DEFAULT_LOOSE_OBJECT_SIZE_LIMIT
